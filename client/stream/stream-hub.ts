// One `GET /events` stream shared by many subscribers (the tabs of a browser, through a SharedWorker; or
// just the one tab when SharedWorker is missing). It opens the stream with the union of their boards and
// topics, hands each subscriber only its boards and topics, keeps a short buffer so a tab that joins late
// can resume from its snapshot id, and tells everyone when the session is gone (an EventSource refused
// with 401 never reconnects by itself: docs/design.md, "Pitfalls of this stack").
//
// Ids are per board (docs/events.md, "Boards"); every frame's `id:` is the connection's cursor, naming
// each board's position (docs/events.md, "Resume"). The hub keeps those positions, so when the union
// changes it reopens at `?since=<cursor>` and nothing is missed or delivered twice.
import { MAX_BOARDS_PER_STREAM } from '../../shared/boards.ts';
import { formatCursor, parseCursor } from '../../shared/cursor.ts';
import { compareStreamIds, envelopeSchema, topicOf, type Envelope } from '../../shared/events.ts';
import { EVENT_KINDS } from '../../shared/topics.ts';
import type { StreamState } from '../state/dashboard.ts';
import { compileTopics, unionTopics, type TopicMatcher } from '../state/topics.ts';
import { parseBoardsFrame, parseHeartbeatFrame, parseJsonFrame, parseResetFrame } from './frames.ts';
import type { BoardSubscription, HubMessage } from './protocol.ts';

/** What the hub needs of an EventSource (the browser's in production). */
export interface StreamSource {
  readonly readyState: number;
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  close(): void;
}

export interface HubSubscriber {
  send(message: HubMessage): void;
}

/** After the server refused the stream: the session is gone, or these are the boards the user may see. */
export type AccessCheck =
  { kind: 'unauthorized' } | { kind: 'visible'; boards: ReadonlySet<string> } | { kind: 'unknown' };

export interface StreamHubOptions {
  openSource(url: string): StreamSource;
  /** Asked after the server refused the stream: is it the session, a board gone, or something passing? */
  checkAccess(): Promise<AccessCheck>;
  /** Stream path. Default `/events`. */
  path?: string;
  /** Recent events kept for subscribers that join late, over all boards. Default 2000. */
  bufferSize?: number;
  /** First wait before reopening a refused stream; doubles up to `retryMaxMs`. Default 1000. */
  retryMinMs?: number;
  /** Default 15000. */
  retryMaxMs?: number;
}

const CLOSED = 2;
/** Subscribers hear that the stream is alive at most this often. */
const ALIVE_EVERY_MS = 1000;

interface Subscription {
  boards: ReadonlySet<string>;
  topics: readonly string[] | null;
  matcher: TopicMatcher;
}

function maxId(a: string | undefined, b: string): string {
  return a === undefined || compareStreamIds(b, a) > 0 ? b : a;
}

export class StreamHub {
  private readonly options: Required<StreamHubOptions>;
  private readonly subscribers = new Map<HubSubscriber, Subscription>();
  private source: StreamSource | undefined;
  /** Boards and topics the stream was (last) opened with, sorted; kept across a refusal's retry wait. */
  private sourceBoards: readonly string[] = [];
  private sourceTopics: TopicMatcher | undefined;
  private sourceKey: string | undefined;
  /** Per board: the newest position the stream has told (frame ids), or the one it was opened from. */
  private readonly positions = new Map<string, string>();
  /** Per board: the buffer holds every event of the stream's topics after this id (absent: unknown). */
  private readonly complete = new Map<string, string>();
  /** Recent events per board, in id order. */
  private readonly buffers = new Map<string, Envelope[]>();
  private buffered = 0;
  /** `<board>:<id>` received, so a reopened stream's replay reaches each subscriber once. */
  private readonly seen = new Set<string>();
  private state: StreamState = 'connecting';
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryDelayMs: number;
  /** The server's heartbeat period, once a heartbeat said it. */
  private heartbeatMs: number | undefined;
  /** When the stream last brought anything (epoch ms), and when subscribers were last told. */
  private receivedAt: number | undefined;
  private aliveSaidAt = -Infinity;

  constructor(options: StreamHubOptions) {
    this.options = { path: '/events', bufferSize: 2000, retryMinMs: 1000, retryMaxMs: 15_000, ...options };
    this.retryDelayMs = this.options.retryMinMs;
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /**
   * Starts or changes a subscription: for each board, events after its `since` (the subscriber's
   * snapshot of it; null: from now on) that match `topics`.
   */
  subscribe(
    subscriber: HubSubscriber,
    boards: readonly BoardSubscription[],
    topics: readonly string[] | null,
  ) {
    const matcher = compileTopics(topics);
    this.subscribers.set(subscriber, {
      boards: new Set(boards.map(({ board }) => board)),
      topics: matcher.patterns,
      matcher,
    });
    subscriber.send({ type: 'state', state: this.state });
    if (this.state === 'live' && this.receivedAt !== undefined) subscriber.send(this.aliveMessage());
    const sinceOf = new Map<string, string>();
    let replay = false;
    const missed: Envelope[] = [];
    for (const { board, since } of boards) {
      if (since === null) continue;
      const position = this.positions.get(board);
      if (
        !this.sourceBoards.includes(board) ||
        (position !== undefined && compareStreamIds(since, position) >= 0)
      ) {
        sinceOf.set(board, since);
        continue;
      }
      const complete = this.complete.get(board);
      if (complete === undefined) {
        // What the buffer holds of this board is not known yet (it started live): ask the server.
        sinceOf.set(board, since);
        replay = true;
      } else if (compareStreamIds(since, complete) < 0) {
        // Events between its snapshot and the buffer's start were delivered before it came and are no
        // longer held: a fresher snapshot is cheaper than a replay for everyone.
        subscriber.send({ type: 'reset', board });
      } else {
        sinceOf.set(board, since);
        for (const event of this.buffers.get(board) ?? []) {
          if (compareStreamIds(event.id, since) > 0 && matcher.matches(topicOf(event))) missed.push(event);
        }
      }
    }
    if (missed.length > 0) subscriber.send({ type: 'events', events: missed });
    this.ensureStream(sinceOf, replay);
  }

  unsubscribe(subscriber: HubSubscriber): void {
    if (!this.subscribers.delete(subscriber)) return;
    if (this.subscribers.size === 0) this.forget();
    else this.ensureStream();
  }

  /**
   * Reopens the stream from the positions it has (a phone woke up, the browser came back online): a
   * connection that died silently would otherwise look open until the operating system gives up on it.
   */
  reconnect(): void {
    if (this.subscribers.size === 0 || this.sourceBoards.length === 0) return;
    this.ensureStream(new Map(), true);
  }

  /** Logged out in one tab: every tab goes to the login page and the stream closes. */
  logout(): void {
    const subscribers = [...this.subscribers.keys()];
    this.subscribers.clear();
    this.forget();
    for (const subscriber of subscribers) subscriber.send({ type: 'loggedOut' });
  }

  /** Closes the stream and drops all state; the next subscriber starts afresh. */
  private forget(): void {
    this.closeSource();
    this.sourceBoards = [];
    this.sourceTopics = undefined;
    this.sourceKey = undefined;
    this.positions.clear();
    this.complete.clear();
    this.buffers.clear();
    this.buffered = 0;
    this.seen.clear();
    this.state = 'connecting';
    this.retryDelayMs = this.options.retryMinMs;
  }

  private closeSource(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.source?.close();
    this.source = undefined;
  }

  /**
   * The boards the stream carries: every subscriber's, at most the server's limit per stream (the
   * subscribers with fewer boards, i.e. board views, before the overview's many).
   */
  private wantedBoards(): string[] {
    const subscriptions = [...this.subscribers.values()].sort((a, b) => a.boards.size - b.boards.size);
    const chosen = new Set<string>();
    for (const { boards } of subscriptions) {
      for (const board of boards) {
        if (chosen.size >= MAX_BOARDS_PER_STREAM) break;
        chosen.add(board);
      }
    }
    return [...chosen].sort();
  }

  /**
   * Opens the stream, or reopens it when the union of boards or topics changed (or `force`). Each board
   * resumes from the older of the stream's position and a new subscriber's snapshot (`sinceOf`), so
   * topics the old stream did not carry are replayed; events already seen are not delivered twice. A
   * board without either starts from now.
   */
  private ensureStream(sinceOf: ReadonlyMap<string, string> = new Map(), force = false): void {
    const boards = this.wantedBoards();
    if (boards.length === 0) {
      // Subscribers showing no board (theirs were all removed): nothing to stream.
      this.closeSource();
      for (const board of this.sourceBoards) this.dropBoard(board);
      this.sourceBoards = [];
      this.sourceTopics = undefined;
      this.sourceKey = undefined;
      return;
    }
    const topics = unionTopics(
      [...this.subscribers.values()]
        .filter((subscription) => subscription.boards.size > 0)
        .map((subscription) => subscription.topics),
    );
    const key = `${boards.join(',')}|${topics.key}`;
    const pending = this.retryTimer !== undefined;
    if (!force && (this.source || pending) && key === this.sourceKey) return;

    const topicsChanged = this.sourceTopics !== undefined && this.sourceTopics.key !== topics.key;
    const from = new Map<string, string>();
    for (const board of boards) {
      const streamed = this.sourceBoards.includes(board);
      let start = streamed ? this.positions.get(board) : undefined;
      const since = sinceOf.get(board);
      if (since !== undefined && (start === undefined || compareStreamIds(since, start) < 0)) start = since;
      if (start !== undefined) from.set(board, start);
      if (!streamed) {
        this.dropBoard(board);
        if (start !== undefined) {
          this.positions.set(board, start);
          this.complete.set(board, start);
        }
      } else if (topicsChanged) {
        // The buffer holds nothing of the added topics before `start`.
        const complete = this.complete.get(board);
        if (start === undefined) this.complete.delete(board);
        else if (complete !== undefined) this.complete.set(board, maxId(complete, start));
      }
    }
    for (const board of this.sourceBoards) if (!boards.includes(board)) this.dropBoard(board);
    this.open(boards, topics, key, from);
  }

  private dropBoard(board: string): void {
    this.positions.delete(board);
    this.complete.delete(board);
    this.buffered -= this.buffers.get(board)?.length ?? 0;
    this.buffers.delete(board);
  }

  private open(boards: readonly string[], topics: TopicMatcher, key: string, from: Map<string, string>) {
    this.closeSource();
    const query = new URLSearchParams();
    query.set('boards', boards.join(','));
    if (from.size > 0) query.set('since', formatCursor(from));
    if (topics.patterns) query.set('topics', topics.patterns.join(','));
    const source = this.options.openSource(`${this.options.path}?${query.toString()}`);
    this.source = source;
    this.sourceBoards = boards;
    this.sourceTopics = topics;
    this.sourceKey = key;
    source.addEventListener('open', () => {
      if (source !== this.source) return;
      this.retryDelayMs = this.options.retryMinMs;
      // Said on every (re)open, even when already live: a subscriber without a snapshot id (the
      // overview) reads the current state again, covering what happened before its boards joined.
      this.state = 'live';
      for (const subscriber of this.subscribers.keys()) subscriber.send({ type: 'state', state: 'live' });
      this.sayAlive(true);
    });
    source.addEventListener('heartbeat', (message) => {
      if (source !== this.source) return;
      const every = parseHeartbeatFrame(message.data);
      const changed = every !== undefined && every !== this.heartbeatMs;
      if (every !== undefined) this.heartbeatMs = every;
      this.sayAlive(changed);
    });
    source.addEventListener('error', () => {
      if (source !== this.source) return;
      if (source.readyState === CLOSED) void this.refused(source);
      else this.setState('reconnecting');
    });
    source.addEventListener('reset', (message) => {
      if (source !== this.source) return;
      // The server could not resume a board: the buffer no longer describes its complete history.
      const board = parseResetFrame(message.data);
      for (const reset of board === undefined ? this.sourceBoards : [board]) {
        if (!this.sourceBoards.includes(reset)) continue;
        this.dropBoard(reset);
        this.sendTo(reset, { type: 'reset', board: reset });
      }
    });
    source.addEventListener('boards', (message) => {
      if (source !== this.source) return;
      const removed = parseBoardsFrame(message.data);
      if (removed.length > 0) this.removeBoards(removed, true);
    });
    for (const type of EVENT_KINDS) {
      source.addEventListener(type, (message) => {
        if (source !== this.source) return;
        this.receive(message);
      });
    }
  }

  /** Tells every subscriber the stream is alive, at most once a second unless `now`. */
  private sayAlive(now: boolean): void {
    const at = Date.now();
    this.receivedAt = at;
    if (!now && at - this.aliveSaidAt < ALIVE_EVERY_MS) return;
    this.aliveSaidAt = at;
    const message = this.aliveMessage();
    for (const subscriber of this.subscribers.keys()) subscriber.send(message);
  }

  private aliveMessage(): HubMessage {
    const receivedAt = this.receivedAt ?? Date.now();
    return this.heartbeatMs === undefined
      ? { type: 'alive', receivedAt }
      : { type: 'alive', receivedAt, heartbeatMs: this.heartbeatMs };
  }

  private receive(message: MessageEvent): void {
    this.sayAlive(false);
    const parsed = envelopeSchema.safeParse(parseJsonFrame(message.data));
    if (!parsed.success) return;
    const event = parsed.data;
    this.advance(message.lastEventId, event);
    const key = `${event.board}:${event.id}`;
    if (this.seen.has(key) || !this.sourceBoards.includes(event.board)) return;
    this.remember(key, event);
    const topic = topicOf(event);
    for (const [subscriber, subscription] of this.subscribers) {
      if (subscription.boards.has(event.board) && subscription.matcher.matches(topic)) {
        subscriber.send({ type: 'events', events: [event] });
      }
    }
  }

  /** Takes each board's position from the frame's cursor (and the event's own id). */
  private advance(frameId: string | undefined, event: Envelope): void {
    const cursor = frameId ? parseCursor(frameId) : undefined;
    if (cursor?.ok) {
      for (const [board, id] of cursor.value) {
        if (!this.sourceBoards.includes(board)) continue;
        // A board that started live: from here on the buffer has all of it (its own event is buffered).
        if (!this.complete.has(board) && board !== event.board) this.complete.set(board, id);
        this.positions.set(board, maxId(this.positions.get(board), id));
      }
    }
    if (this.sourceBoards.includes(event.board)) {
      this.positions.set(event.board, maxId(this.positions.get(event.board), event.id));
    }
  }

  private remember(key: string, event: Envelope): void {
    const { bufferSize } = this.options;
    this.seen.add(key);
    let buffer = this.buffers.get(event.board);
    if (!buffer) this.buffers.set(event.board, (buffer = []));
    let index = buffer.length;
    while (index > 0 && compareStreamIds(buffer[index - 1]?.id ?? '0-0', event.id) > 0) index -= 1;
    buffer.splice(index, 0, event);
    this.buffered += 1;
    while (this.buffered > bufferSize) this.evictOne();
    // Ids older than the buffer cannot come back in a replay (a subscriber behind it gets a reset).
    if (this.seen.size > bufferSize * 2) {
      for (const seen of this.seen) {
        if (this.seen.size <= bufferSize) break;
        this.seen.delete(seen);
      }
    }
  }

  /** Drops the oldest event of the board holding the most. */
  private evictOne(): void {
    let largest: [string, Envelope[]] | undefined;
    for (const entry of this.buffers) if (!largest || entry[1].length > largest[1].length) largest = entry;
    const dropped = largest?.[1].shift();
    if (!largest || !dropped) {
      this.buffered = 0;
      return;
    }
    this.buffered -= 1;
    this.complete.set(largest[0], maxId(this.complete.get(largest[0]), dropped.id));
  }

  /**
   * Boards that left: each subscriber showing one is told and no longer gets it. With `reopen`, the
   * stream is reopened without them at once (its URL must not name them when the browser reconnects).
   */
  private removeBoards(removed: readonly string[], reopen: boolean): void {
    const gone = new Set(removed);
    for (const [subscriber, subscription] of this.subscribers) {
      const lost = [...subscription.boards].filter((board) => gone.has(board));
      if (lost.length === 0) continue;
      subscription.boards = new Set([...subscription.boards].filter((board) => !gone.has(board)));
      subscriber.send({ type: 'boardsRemoved', boards: lost });
    }
    for (const board of gone) this.dropBoard(board);
    if (reopen) this.ensureStream();
  }

  /** The server answered the stream with an error status: 401 ends it, a board gone is dropped, the rest retried. */
  private async refused(source: StreamSource): Promise<void> {
    source.close();
    const access = await this.options.checkAccess();
    if (source !== this.source) return;
    if (access.kind === 'unauthorized') {
      const subscribers = [...this.subscribers.keys()];
      this.subscribers.clear();
      this.forget();
      for (const subscriber of subscribers) subscriber.send({ type: 'unauthorized' });
      return;
    }
    this.source = undefined;
    if (access.kind === 'visible') {
      // Revoked or removed while the stream was down: the server refuses a stream naming it (403).
      const asked = new Set([...this.subscribers.values()].flatMap(({ boards }) => [...boards]));
      const gone = [...asked].filter((board) => !access.boards.has(board));
      if (gone.length > 0) this.removeBoards(gone, false);
    }
    this.setState('reconnecting');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.subscribers.size > 0) this.ensureStream(new Map(), true);
    }, this.retryDelayMs);
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.options.retryMaxMs);
  }

  private setState(state: StreamState): void {
    if (state === this.state) return;
    this.state = state;
    for (const subscriber of this.subscribers.keys()) subscriber.send({ type: 'state', state });
  }

  private sendTo(board: string, message: HubMessage): void {
    for (const [subscriber, subscription] of this.subscribers) {
      if (subscription.boards.has(board)) subscriber.send(message);
    }
  }
}
