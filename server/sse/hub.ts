// The per-worker fan-out (docs/architecture.md, "Coalesced fan-out"): events taken in one event-loop turn
// are encoded once each, joined once per distinct topic filter, and written once per connection when the
// turn ends. The hub is the bus's `EventDelivery`.
import { compareStreamIds, topicOf, type Envelope } from '../../shared/events.ts';
import type { Metrics } from '../metrics.ts';
import type { CloseReason, EncodedEvent, FrameBatch, SseConnection } from './connection.ts';
import type { EventDelivery } from './delivery.ts';
import { encodeEvent, encodeReset, HEARTBEAT_FRAME } from './frame.ts';
import { ALL_TOPICS, type TopicFilter } from './topics.ts';

export interface HubOptions {
  metrics: Metrics;
  /** Comment written to a connection that had no other write for this long. */
  heartbeatMs: number;
}

/** The connections that share one topic filter: they get the same bytes from every flush. */
interface FilterGroup {
  readonly filter: TopicFilter;
  readonly connections: Set<SseConnection>;
}

export class Hub implements EventDelivery {
  private readonly groups = new Map<string, FilterGroup>();
  private connectionCount = 0;
  private readonly metrics: Metrics;
  private readonly heartbeatMs: number;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  /** Id of the newest event taken; older or equal ids are duplicates (replay overlap) and dropped. */
  private lastId: string | undefined;
  /** Events taken since the last flush, oldest first. */
  private pending: Envelope[] = [];
  private flushScheduled = false;
  private readonly flushSoon = () => this.flush();
  private readonly onConnectionClose = (connection: SseConnection, reason: CloseReason) =>
    this.remove(connection, reason);

  constructor(options: HubOptions) {
    this.metrics = options.metrics;
    this.heartbeatMs = options.heartbeatMs;
  }

  get size(): number {
    return this.connectionCount;
  }

  lastDeliveredId(): string | undefined {
    return this.lastId;
  }

  add(connection: SseConnection): void {
    if (connection.closed) return;
    const key = connection.topics.key;
    let group = this.groups.get(key);
    if (!group) {
      group = { filter: connection.topics, connections: new Set() };
      this.groups.set(key, group);
    }
    group.connections.add(connection);
    this.connectionCount += 1;
    this.metrics.sseConnections.inc();
    connection.onClose(this.onConnectionClose);
  }

  private remove(connection: SseConnection, reason: CloseReason): void {
    const key = connection.topics.key;
    const group = this.groups.get(key);
    if (!group?.connections.delete(connection)) return;
    if (group.connections.size === 0) this.groups.delete(key);
    this.connectionCount -= 1;
    this.metrics.sseConnections.dec();
    if (reason === 'slow') this.metrics.slowConsumerCloses.inc();
  }

  /** Takes one event for the flush at the end of this turn; the one id comparison of the live path. */
  deliver(envelope: Envelope): void {
    if (this.lastId !== undefined && compareStreamIds(envelope.id, this.lastId) <= 0) return;
    this.lastId = envelope.id;
    this.pending.push(envelope);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // setImmediate, not a microtask: every message read from the subscriber's socket in this turn joins.
      setImmediate(this.flushSoon);
    }
  }

  /** Writes the events taken so far: one write per connection; returns how many events were written. */
  flush(): number {
    this.flushScheduled = false;
    const envelopes = this.pending;
    if (envelopes.length === 0) return 0;
    this.pending = [];
    const events = envelopes.map((envelope) => ({ id: envelope.id, frame: encodeEvent(envelope) }));
    const everything: FrameBatch = { events, bytes: join(events) };
    let topics: string[] | undefined;
    const now = Date.now();
    let delivered = 0;
    for (const group of this.groups.values()) {
      let batch = everything;
      if (group.filter !== ALL_TOPICS) {
        topics ??= envelopes.map(topicOf);
        batch = selectBatch(group.filter, topics, everything);
        if (batch.events.length === 0) continue;
      }
      for (const connection of group.connections) delivered += connection.deliverBatch(batch, now);
    }
    if (delivered > 0) this.metrics.deliveries.inc(delivered);
    // The id's first part is Redis' clock at sequencing; `ts` may be a publisher's (backfill, skew).
    for (const { id } of events) {
      const sequencedAt = Number(id.slice(0, id.indexOf('-')));
      this.metrics.publishToWriteLag.observe(Math.max(0, now - sequencedAt) / 1000);
    }
    return delivered;
  }

  resetAll(reason: string, options: { forgetIds?: boolean } = {}): void {
    // Events taken before the reset reach clients before it.
    this.flush();
    const frame = encodeReset(reason);
    if (options.forgetIds) this.lastId = undefined;
    for (const connection of this.connections()) {
      if (options.forgetIds) connection.forgetCursor();
      connection.write(frame);
    }
    this.metrics.resets.inc(this.connectionCount);
  }

  /** Every open connection (a snapshot: closing one while iterating is safe). */
  private connections(): SseConnection[] {
    const all: SseConnection[] = [];
    for (const group of this.groups.values())
      for (const connection of group.connections) all.push(connection);
    return all;
  }

  closeWhere(predicate: (connection: SseConnection) => boolean, reason: CloseReason): number {
    let closed = 0;
    for (const connection of this.connections()) {
      if (predicate(connection)) {
        connection.close(reason);
        closed += 1;
      }
    }
    return closed;
  }

  closeAll(reason: CloseReason): number {
    this.flush();
    return this.closeWhere(() => true, reason);
  }

  count(predicate: (connection: SseConnection) => boolean): number {
    let count = 0;
    for (const group of this.groups.values())
      for (const connection of group.connections) if (predicate(connection)) count += 1;
    return count;
  }

  startHeartbeats(): void {
    if (this.heartbeatTimer) return;
    const tickMs = Math.max(250, Math.floor(this.heartbeatMs / 4));
    this.heartbeatTimer = setInterval(() => {
      const now = Date.now();
      const due = now - this.heartbeatMs;
      for (const group of this.groups.values())
        for (const connection of group.connections)
          if (connection.lastWriteAt <= due) connection.write(HEARTBEAT_FRAME, now);
    }, tickMs);
    this.heartbeatTimer.unref();
  }

  stopHeartbeats(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }
}

function join(events: readonly EncodedEvent[]): Buffer {
  const only = events.length === 1 ? events[0] : undefined;
  return only ? only.frame : Buffer.concat(events.map(({ frame }) => frame));
}

/** The part of a flush one filter matches, joined once for all its connections. */
function selectBatch(filter: TopicFilter, topics: readonly string[], all: FrameBatch): FrameBatch {
  const events = all.events.filter((_, index) => filter.matches(topics[index] ?? ''));
  if (events.length === all.events.length) return all;
  return { events, bytes: join(events) };
}
