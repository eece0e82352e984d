// The per-worker fan-out: each event is encoded once into a Buffer and the same Buffer is written to every
// matching connection (DESIGN.md, "SSE stream").
import { compareStreamIds, topicOf, type Envelope } from '../../shared/events.ts';
import type { Metrics } from '../metrics.ts';
import { encodeEvent, encodeReset, HEARTBEAT_FRAME } from './frame.ts';
import type { CloseReason, SseConnection } from './connection.ts';

export interface HubOptions {
  metrics: Metrics;
  /** Comment written to a connection that had no other write for this long. */
  heartbeatMs: number;
}

export class Hub {
  private readonly connections = new Set<SseConnection>();
  private readonly metrics: Metrics;
  private readonly heartbeatMs: number;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  /** Id of the newest event fanned out; older or equal ids are duplicates (replay overlap) and dropped. */
  lastId: string | undefined;

  constructor(options: HubOptions) {
    this.metrics = options.metrics;
    this.heartbeatMs = options.heartbeatMs;
  }

  get size(): number {
    return this.connections.size;
  }

  add(connection: SseConnection): void {
    this.connections.add(connection);
    this.metrics.sseConnections.inc();
    connection.onClose((reason) => {
      this.connections.delete(connection);
      this.metrics.sseConnections.dec();
      if (reason === 'slow') this.metrics.slowConsumerCloses.inc();
    });
  }

  /** Sends one event to every matching connection; returns how many got it. */
  fanOut(envelope: Envelope): number {
    if (this.lastId !== undefined && compareStreamIds(envelope.id, this.lastId) <= 0) return 0;
    this.lastId = envelope.id;
    const frame = encodeEvent(envelope);
    const topic = topicOf(envelope);
    const matchByFilter = new Map<string, boolean>();
    let delivered = 0;
    for (const connection of this.connections) {
      let matches = matchByFilter.get(connection.topics.key);
      if (matches === undefined) {
        matches = connection.topics.matches(topic);
        matchByFilter.set(connection.topics.key, matches);
      }
      if (matches && connection.deliver(envelope.id, frame)) delivered += 1;
    }
    if (delivered > 0) {
      this.metrics.deliveries.inc(delivered);
      // The id's first part is Redis' clock at sequencing; `ts` may be a publisher's (backfill, skew).
      const sequencedAt = Number(envelope.id.slice(0, envelope.id.indexOf('-')));
      this.metrics.publishToWriteLag.observe(Math.max(0, Date.now() - sequencedAt) / 1000);
    }
    return delivered;
  }

  /**
   * Tells every client to refetch the snapshot (this worker lost events it cannot replay). With
   * `forgetIds`, ids seen so far no longer hold back newer events: the log they came from is gone.
   */
  resetAll(reason: string, options: { forgetIds?: boolean } = {}): void {
    const frame = encodeReset(reason);
    if (options.forgetIds) this.lastId = undefined;
    for (const connection of this.connections) {
      if (options.forgetIds) connection.lastId = undefined;
      connection.write(frame);
    }
    this.metrics.resets.inc(this.connections.size);
  }

  closeWhere(predicate: (connection: SseConnection) => boolean, reason: CloseReason): number {
    let closed = 0;
    for (const connection of [...this.connections]) {
      if (predicate(connection)) {
        connection.close(reason);
        closed += 1;
      }
    }
    return closed;
  }

  closeAll(reason: CloseReason): number {
    return this.closeWhere(() => true, reason);
  }

  count(predicate: (connection: SseConnection) => boolean): number {
    let count = 0;
    for (const connection of this.connections) if (predicate(connection)) count += 1;
    return count;
  }

  startHeartbeats(): void {
    if (this.heartbeatTimer) return;
    const tickMs = Math.max(250, Math.floor(this.heartbeatMs / 4));
    this.heartbeatTimer = setInterval(() => {
      const due = Date.now() - this.heartbeatMs;
      for (const connection of this.connections)
        if (connection.lastWriteAt <= due) connection.write(HEARTBEAT_FRAME);
    }, tickMs);
    this.heartbeatTimer.unref();
  }

  stopHeartbeats(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }
}
