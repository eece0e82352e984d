// One `GET /events` stream shared by many subscribers (the tabs of a browser, through a SharedWorker; or
// just the one tab when SharedWorker is missing). It opens the stream with the union of their topics,
// hands each subscriber only its topics, keeps a short buffer so a tab that joins late can resume from
// its snapshot id, and tells everyone when the session is gone (an EventSource refused with 401 never
// reconnects by itself: docs/design.md, "Pitfalls of this stack").
import { compareStreamIds, envelopeSchema, topicOf, type Envelope } from '../../shared/events.ts';
import type { StreamState } from '../state/dashboard.ts';
import { EVENT_KINDS } from '../../shared/topics.ts';
import { compileTopics, unionTopics, type TopicMatcher } from '../state/topics.ts';
import type { HubMessage } from './protocol.ts';

/** What the hub needs of an EventSource (the browser's in production). */
export interface StreamSource {
  readonly readyState: number;
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  close(): void;
}

export interface HubSubscriber {
  send(message: HubMessage): void;
}

export type SessionCheck = 'valid' | 'unauthorized' | 'unknown';

export interface StreamHubOptions {
  openSource(url: string): StreamSource;
  /** Asked after the server refused the stream: is it the session, or something passing? */
  checkSession(): Promise<SessionCheck>;
  /** Stream path. Default `/events`. */
  path?: string;
  /** Recent events kept for subscribers that join late. Default 2000. */
  bufferSize?: number;
  /** First wait before reopening a refused stream; doubles up to `retryMaxMs`. Default 1000. */
  retryMinMs?: number;
  /** Default 15000. */
  retryMaxMs?: number;
}

const CLOSED = 2;

interface Subscription {
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
  /** Topics the open stream was asked for. */
  private sourceTopics: TopicMatcher | undefined;
  /** Newest id the stream has delivered, or the id it was opened from. */
  private lastId: string | undefined;
  /** Recent events in id order; complete for ids after `bufferFrom` (for the stream's topics). */
  private buffer: Envelope[] = [];
  private bufferFrom: string | undefined;
  /** Ids received, so a reopened stream's replay reaches each subscriber once. */
  private readonly seen = new Set<string>();
  private state: StreamState = 'connecting';
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryDelayMs: number;

  constructor(options: StreamHubOptions) {
    this.options = { path: '/events', bufferSize: 2000, retryMinMs: 1000, retryMaxMs: 15_000, ...options };
    this.retryDelayMs = this.options.retryMinMs;
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Starts or changes a subscription: events after `since` (the subscriber's snapshot) on `topics`. */
  subscribe(subscriber: HubSubscriber, topics: readonly string[] | null, since: string): void {
    const matcher = compileTopics(topics);
    this.subscribers.set(subscriber, { topics: matcher.patterns, matcher });
    subscriber.send({ type: 'state', state: this.state });
    const behind = this.lastId !== undefined && compareStreamIds(since, this.lastId) < 0;
    if (behind && this.bufferFrom !== undefined && compareStreamIds(since, this.bufferFrom) < 0) {
      // Events between its snapshot and the buffer's start were delivered before it came and are no
      // longer held: a fresher snapshot is cheaper than a replay for everyone.
      subscriber.send({ type: 'reset' });
      return;
    }
    const missed = this.buffer.filter(
      (event) => compareStreamIds(event.id, since) > 0 && matcher.matches(topicOf(event)),
    );
    if (missed.length > 0) subscriber.send({ type: 'events', events: missed });
    this.ensureStream(since);
  }

  unsubscribe(subscriber: HubSubscriber): void {
    if (!this.subscribers.delete(subscriber)) return;
    if (this.subscribers.size === 0) this.forget();
    else this.ensureStream(undefined);
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
    this.lastId = undefined;
    this.buffer = [];
    this.bufferFrom = undefined;
    this.seen.clear();
    this.state = 'connecting';
    this.retryDelayMs = this.options.retryMinMs;
  }

  private closeSource(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.source?.close();
    this.source = undefined;
    this.sourceTopics = undefined;
  }

  /** Opens the stream, or reopens it when the union of topics changed. */
  private ensureStream(since: string | undefined): void {
    if (this.subscribers.size === 0) return;
    const union = unionTopics([...this.subscribers.values()].map((subscription) => subscription.topics));
    const pending = this.retryTimer !== undefined;
    if ((this.source || pending) && this.sourceTopics?.key === union.key) return;
    // Resume from the older of the stream's position and the new subscriber's snapshot, so topics that
    // the old stream did not carry are replayed; events already seen are not delivered twice.
    let from = this.lastId;
    if (since !== undefined && (from === undefined || compareStreamIds(since, from) < 0)) from = since;
    // The buffer holds nothing of the added topics before `from`.
    if (this.source && since !== undefined && from !== undefined)
      this.bufferFrom = maxId(this.bufferFrom, from);
    this.open(union, from);
  }

  private open(topics: TopicMatcher, from: string | undefined): void {
    this.closeSource();
    const query = new URLSearchParams();
    if (from !== undefined) query.set('since', from);
    if (topics.patterns) query.set('topics', topics.patterns.join(','));
    const text = query.toString();
    const source = this.options.openSource(text ? `${this.options.path}?${text}` : this.options.path);
    this.source = source;
    this.sourceTopics = topics;
    if (from !== undefined) {
      this.lastId = maxId(this.lastId, from);
      this.bufferFrom ??= from;
    }
    source.addEventListener('open', () => {
      if (source !== this.source) return;
      this.retryDelayMs = this.options.retryMinMs;
      this.setState('live');
    });
    source.addEventListener('error', () => {
      if (source !== this.source) return;
      if (source.readyState === CLOSED) void this.refused(source);
      else this.setState('reconnecting');
    });
    source.addEventListener('reset', () => {
      if (source !== this.source) return;
      // The server could not resume: the buffer no longer describes a complete history.
      this.buffer = [];
      this.bufferFrom = undefined;
      this.lastId = undefined;
      this.broadcast({ type: 'reset' });
    });
    for (const type of EVENT_KINDS) {
      source.addEventListener(type, (message) => {
        if (source !== this.source) return;
        this.receive(message.data);
      });
    }
  }

  private receive(data: unknown): void {
    if (typeof data !== 'string') return;
    let value: unknown;
    try {
      value = JSON.parse(data);
    } catch {
      return;
    }
    const parsed = envelopeSchema.safeParse(value);
    if (!parsed.success) return;
    const event = parsed.data;
    if (this.seen.has(event.id)) return;
    this.remember(event);
    const topic = topicOf(event);
    for (const [subscriber, subscription] of this.subscribers) {
      if (subscription.matcher.matches(topic)) subscriber.send({ type: 'events', events: [event] });
    }
  }

  private remember(event: Envelope): void {
    const { bufferSize } = this.options;
    this.seen.add(event.id);
    this.lastId = maxId(this.lastId, event.id);
    let index = this.buffer.length;
    while (index > 0 && compareStreamIds(this.buffer[index - 1]?.id ?? '0-0', event.id) > 0) index -= 1;
    this.buffer.splice(index, 0, event);
    while (this.buffer.length > bufferSize) {
      const dropped = this.buffer.shift();
      if (dropped) this.bufferFrom = dropped.id;
    }
    // Ids older than the buffer cannot come back in a replay (a subscriber behind it gets a reset).
    if (this.seen.size > bufferSize * 2) {
      for (const id of this.seen) {
        if (this.seen.size <= bufferSize) break;
        this.seen.delete(id);
      }
    }
  }

  /** The server answered the stream with an error status: 401 ends it, anything else is retried. */
  private async refused(source: StreamSource): Promise<void> {
    source.close();
    const session = await this.options.checkSession();
    if (source !== this.source) return;
    if (session === 'unauthorized') {
      const subscribers = [...this.subscribers.keys()];
      this.subscribers.clear();
      this.forget();
      for (const subscriber of subscribers) subscriber.send({ type: 'unauthorized' });
      return;
    }
    this.setState('reconnecting');
    const topics = this.sourceTopics;
    this.source = undefined;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.subscribers.size === 0 || !topics) return;
      this.open(topics, this.lastId);
    }, this.retryDelayMs);
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.options.retryMaxMs);
  }

  private setState(state: StreamState): void {
    if (state === this.state) return;
    this.state = state;
    this.broadcast({ type: 'state', state });
  }

  private broadcast(message: HubMessage): void {
    for (const subscriber of this.subscribers.keys()) subscriber.send(message);
  }
}
