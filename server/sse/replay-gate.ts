// How many client replays (resumes with Last-Event-ID) a worker runs at once (docs/reliability.md,
// "Reconnect storms and memory"). After a reload every stream of the retiring worker resumes here at
// the same moment; each replay holds a batch of parsed log entries and its socket's unsent bytes, so
// without a bound a storm of 1,000 resumes held hundreds of MB at once, which the process kept afterwards
// (V8 keeps a grown heap, malloc its freed pages). Replays past the limit wait their turn in order; their
// live events are held meanwhile (SseConnection.beginReplay), within the slow-consumer limit.

/** Replays run at once per worker unless the route is told otherwise. */
export const REPLAY_CONCURRENCY = 64;

export class ReplayGate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number = REPLAY_CONCURRENCY) {}

  /** Replays waiting for a turn. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Runs `replay` once a turn is free; a finished replay hands its turn to the first one waiting. */
  async run(replay: () => Promise<void>): Promise<void> {
    if (this.running < this.limit) this.running += 1;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      await replay();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    }
  }
}
