// A real EventSource client (eventsource@4) that records what it receives, for assertions.
import { EventSource, type FetchLike } from 'eventsource';
import { envelopeSchema, type Envelope } from '../../shared/events.ts';
import { EVENT_KINDS } from '../../shared/topics.ts';

export interface RecordedStream {
  source: EventSource;
  events: Envelope[];
  resets: number;
  opens: number;
  errors: number;
  /** Resolves when `predicate` holds for the recorded events, or rejects after `timeoutMs`. */
  waitFor(predicate: (events: Envelope[]) => boolean, timeoutMs?: number, what?: string): Promise<void>;
  waitForOpen(timeoutMs?: number): Promise<void>;
  close(): void;
}

export interface StreamOptions {
  headers?: Record<string, string>;
}

/** Waits `ms`: for giving a late duplicate the chance to arrive, or pacing a publisher. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export function openStream(url: string, options: StreamOptions = {}): RecordedStream {
  const headers = options.headers ?? {};
  const fetchWithHeaders: FetchLike = (input, init) =>
    fetch(input, { ...init, headers: { ...(init?.headers ?? {}), ...headers } });
  const source = new EventSource(url, { fetch: fetchWithHeaders });
  const recorded: RecordedStream = {
    source,
    events: [],
    resets: 0,
    opens: 0,
    errors: 0,
    waitFor: (predicate, timeoutMs = 5000, what = 'events') =>
      until(() => predicate(recorded.events), timeoutMs, what),
    waitForOpen: (timeoutMs = 5000) =>
      until(() => source.readyState === EventSource.OPEN, timeoutMs, 'stream open'),
    close: () => source.close(),
  };
  source.addEventListener('open', () => (recorded.opens += 1));
  source.addEventListener('error', () => (recorded.errors += 1));
  source.addEventListener('reset', () => (recorded.resets += 1));
  for (const type of EVENT_KINDS) {
    source.addEventListener(type, (message) => {
      recorded.events.push(envelopeSchema.parse(JSON.parse(message.data)));
    });
  }
  return recorded;
}
