// The per-worker fan-out (docs/architecture.md, "Coalesced fan-out"): events taken in one event-loop turn
// are encoded once each, framed once per board set with that set's cursor as their `id:`, joined once per
// group (board set and topic filter), and written once per connection when the turn ends. Positions are
// per board (docs/events.md, "Boards"): each board's ids come from its own log. The hub is the bus's
// `EventDelivery`.
import { formatPositions } from '../../shared/cursor.ts';
import { compareStreamIds, topicOf, type Envelope } from '../../shared/events.ts';
import type { Metrics } from '../metrics/worker-metrics.ts';
import type { CloseReason, FannedEvent, FrameBatch, SseConnection } from './connection.ts';
import { startPosition, type BoardStart, type EventDelivery } from './delivery.ts';
import {
  CHUNK_END,
  encodeBoardsRemoved,
  encodeChunkHead,
  encodeEventBody,
  encodeHeartbeatEvent,
  encodeIdLine,
  encodeReset,
  HEARTBEAT_FRAME,
} from './frame.ts';
import { RecentEvents, type RecentEvent } from './recent-events.ts';
import { ALL_TOPICS, type TopicFilter } from './topics.ts';

export interface HubOptions {
  metrics: Metrics;
  /** Heartbeat written to a connection that had no other write for this long. */
  heartbeatMs: number;
  /**
   * Whether the worker's events flow (its Redis subscriber is live): then the heartbeat is an `event:
   * heartbeat` a browser sees; otherwise a comment, so the browser's stale banner shows (docs/events.md,
   * "Heartbeats"). Default: always.
   */
  sourceLive?: () => boolean;
  /** Called when the last stream of a board left this hub (the bus unsubscribes from its channel). */
  onBoardIdle?: (board: string) => void;
}

/** The longest a flush waits after the last one (its pacing, `deliver`). */
const MAX_FLUSH_PACE_MS = 50;

/** The connections that share one board set and one topic filter: they get the same bytes from every flush. */
interface FilterGroup {
  readonly filter: TopicFilter;
  readonly connections: Set<SseConnection>;
}

/** The groups of one board set: their frames carry the same cursor, built once per flush. */
interface BoardSetGroup {
  /** Sorted. */
  readonly boards: readonly string[];
  /** Board -> its index in `boards`. */
  readonly index: ReadonlyMap<string, number>;
  /** Topic filter key -> group. */
  readonly filters: Map<string, FilterGroup>;
}

/** The key of a board set: its sorted names, which cannot contain `,`. */
function boardSetKey(boards: readonly string[]): string {
  return boards.join(',');
}

export class Hub implements EventDelivery {
  private readonly boardSets = new Map<string, BoardSetGroup>();
  private connectionCount = 0;
  private readonly metrics: Metrics;
  private readonly heartbeatMs: number;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly heartbeatEvent: Buffer;
  private readonly sourceLive: () => boolean;
  /** Board -> id of the newest event taken; older or equal ids are duplicates (replay overlap), dropped. */
  private readonly taken = new Map<string, string>();
  /** Board -> id of the newest event flushed to the connections: the group cursors' ids. */
  private fanned: ReadonlyMap<string, string> = new Map();
  /** Events taken since the last flush, oldest first. */
  private pending: Envelope[] = [];
  private flushScheduled = false;
  private readonly flushSoon = () => this.flush();
  /** When the last flush ended and how long it took (performance.now() ms): the pacing of the next. */
  private lastFlushEnded = 0;
  private lastFlushMs = 0;
  private readonly onConnectionClose = (connection: SseConnection, reason: CloseReason) =>
    this.remove(connection, reason);
  /** Board -> streams carrying it now (for onBoardIdle). */
  private readonly boardStreams = new Map<string, number>();
  private readonly onBoardIdle: ((board: string) => void) | undefined;
  /** What was fanned out lately, per board: resumes replay from it (docs/architecture.md, "Replays from memory"). */
  private readonly recent = new RecentEvents();

  constructor(options: HubOptions) {
    this.metrics = options.metrics;
    this.heartbeatMs = options.heartbeatMs;
    this.heartbeatEvent = encodeHeartbeatEvent(options.heartbeatMs);
    this.sourceLive = options.sourceLive ?? (() => true);
    this.onBoardIdle = options.onBoardIdle;
  }

  /** Streams of `board` in this hub now. */
  streamsOf(board: string): number {
    return this.boardStreams.get(board) ?? 0;
  }

  private countBoards(boards: readonly string[], delta: 1 | -1): void {
    for (const board of boards) {
      const count = (this.boardStreams.get(board) ?? 0) + delta;
      if (count > 0) {
        this.boardStreams.set(board, count);
      } else {
        this.boardStreams.delete(board);
        this.onBoardIdle?.(board);
      }
    }
  }

  get size(): number {
    return this.connectionCount;
  }

  /** Board -> the id of the newest event taken: where a gap fill resumes each board's log. */
  positions(): ReadonlyMap<string, string> {
    return new Map(this.taken);
  }

  /** Board -> the worker's fan-out position: what a connection at its group cursor has. */
  fanOutPositions(): ReadonlyMap<string, string> {
    return this.fanned;
  }

  /**
   * The events of `board` fanned out after `afterId`, oldest first, when this worker kept all of them;
   * undefined when the board's log must answer instead.
   */
  recentAfter(board: string, afterId: string): readonly RecentEvent[] | undefined {
    return this.recent.after(board, afterId);
  }

  /** Whether the hub has a position for `board` (taken an event of it, or been told its log's last id). */
  knowsBoard(board: string): boolean {
    return this.taken.has(board);
  }

  /**
   * Where a board this worker has not seen yet starts: the newest events of its log, read once its channel
   * is subscribed and before any stream of the board is added. They are kept as if fanned out here (bodies
   * encoded once), so a storm of resumes after a reload is replayed from memory (docs/architecture.md,
   * "Replays from memory"). Ignored once the hub has a position of its own for the board.
   */
  startBoard(board: string, start: BoardStart): void {
    if (this.taken.has(board)) return;
    const now = Date.now();
    const events: RecentEvent[] = [];
    const addedAt: number[] = [];
    for (const envelope of start.events) {
      events.push({ board, id: envelope.id, body: encodeEventBody(envelope), topic: topicOf(envelope) });
      // Aged by Redis' clock at sequencing (the id), as if fanned out then.
      addedAt.push(Math.min(now, Number(envelope.id.slice(0, envelope.id.indexOf('-')))));
    }
    this.recent.start(board, start.floor, events, addedAt, now);
    const position = startPosition(start);
    this.taken.set(board, position);
    this.fanned = new Map(this.fanned).set(board, position);
  }

  add(connection: SseConnection): void {
    if (connection.closed) return;
    this.attach(connection);
    this.connectionCount += 1;
    this.metrics.sseConnections.inc();
    connection.onClose(this.onConnectionClose);
  }

  private attach(connection: SseConnection): void {
    const setKey = boardSetKey(connection.boards);
    let boardSet = this.boardSets.get(setKey);
    if (!boardSet) {
      const boards = connection.boards;
      boardSet = { boards, index: new Map(boards.map((board, i) => [board, i])), filters: new Map() };
      this.boardSets.set(setKey, boardSet);
    }
    // The same names: every connection of the set shares one array (idle memory, docs/performance.md).
    connection.shareBoards(boardSet.boards);
    const filterKey = connection.topics.key;
    let group = boardSet.filters.get(filterKey);
    if (!group) {
      group = { filter: connection.topics, connections: new Set() };
      boardSet.filters.set(filterKey, group);
    }
    if (!group.connections.has(connection)) this.countBoards(connection.boards, 1);
    group.connections.add(connection);
  }

  /** Takes the connection out of its group; false when it was in none. */
  private detach(connection: SseConnection): boolean {
    const setKey = boardSetKey(connection.boards);
    const boardSet = this.boardSets.get(setKey);
    const filterKey = connection.topics.key;
    const group = boardSet?.filters.get(filterKey);
    if (!boardSet || !group?.connections.delete(connection)) return false;
    if (group.connections.size === 0) boardSet.filters.delete(filterKey);
    if (boardSet.filters.size === 0) this.boardSets.delete(setKey);
    this.countBoards(connection.boards, -1);
    return true;
  }

  private remove(connection: SseConnection, reason: CloseReason): void {
    if (!this.detach(connection)) return;
    this.connectionCount -= 1;
    this.metrics.sseConnections.dec();
    if (reason === 'slow') this.metrics.slowConsumerCloses.inc();
  }

  /** Takes one event for the flush at the end of this turn; the one id comparison of the live path. */
  deliver(envelope: Envelope): void {
    const board = envelope.board;
    const last = this.taken.get(board);
    if (last !== undefined && compareStreamIds(envelope.id, last) <= 0) return;
    this.taken.set(board, envelope.id);
    this.pending.push(envelope);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // A flush waits at least as long after the last one as that one took (up to MAX_FLUSH_PACE_MS), so
      // a worker busy writing spends at most about half its time on the live fan-out: the rest goes to
      // opening and replaying streams, and the events of the wait go out together, one write per stream
      // for all of them (docs/performance.md, "Paced flushes"). An idle worker flushes at the end of the turn.
      const wait = Math.min(this.lastFlushMs, MAX_FLUSH_PACE_MS) - (performance.now() - this.lastFlushEnded);
      // setImmediate, not a microtask: every message read from the subscriber's socket in this turn joins.
      if (wait < 1) setImmediate(this.flushSoon);
      else setTimeout(this.flushSoon, wait);
    }
  }

  /** Writes the events taken so far: one write per connection; returns how many events were written. */
  flush(): number {
    this.flushScheduled = false;
    const envelopes = this.pending;
    if (envelopes.length === 0) return 0;
    this.pending = [];
    const started = performance.now();
    const now = Date.now();
    const events: RecentEvent[] = envelopes.map((envelope) => ({
      board: envelope.board,
      id: envelope.id,
      body: encodeEventBody(envelope),
      topic: topicOf(envelope),
    }));
    for (const event of events) this.recent.add(event, now);
    const before = this.fanned;
    const after = new Map(before);
    for (const { board, id } of events) after.set(board, id);
    this.fanned = after;
    let delivered = 0;
    for (const boardSet of this.boardSets.values()) {
      const framed = frameForBoardSet(boardSet, events, before);
      if (framed.length === 0) continue;
      for (const group of boardSet.filters.values()) {
        let selected = framed;
        if (group.filter !== ALL_TOPICS) {
          const filter = group.filter;
          selected = framed.filter(({ index }) => filter.matches(events[index]?.topic ?? ''));
          if (selected.length === 0) continue;
        }
        const batch = joinBatch(selected, after);
        for (const connection of group.connections) delivered += connection.deliverBatch(batch, now);
      }
    }
    const ended = performance.now();
    this.lastFlushMs = ended - started;
    this.lastFlushEnded = ended;
    if (delivered > 0) this.metrics.deliveries.inc(delivered);
    // The id's first part is Redis' clock at sequencing; `ts` may be a publisher's (backfill, skew).
    for (const { id } of events) {
      const sequencedAt = Number(id.slice(0, id.indexOf('-')));
      this.metrics.publishToWriteLag.observe(Math.max(0, now - sequencedAt) / 1000);
    }
    return delivered;
  }

  /**
   * Tells the streams carrying `board` to refetch its snapshot (the worker lost events of it it cannot
   * replay). With `restartAt`, the ids seen so far of that board no longer hold back newer events: the log
   * they came from is gone, and the board's position starts over at `restartAt`.
   */
  resetBoard(board: string, reason: string, options: { restartAt?: string } = {}): void {
    // Events taken before the reset reach clients before it.
    this.flush();
    const frame = encodeReset(reason, board);
    const { restartAt } = options;
    // Events of the board were lost to this worker: what it kept no longer covers the gap.
    this.recent.restart(board, restartAt);
    if (restartAt !== undefined) {
      this.taken.set(board, restartAt);
      this.fanned = new Map(this.fanned).set(board, restartAt);
    }
    let resets = 0;
    for (const connection of this.connections()) {
      if (!connection.boards.includes(board)) continue;
      if (restartAt !== undefined) connection.forgetBoard(board);
      connection.write(frame);
      resets += 1;
    }
    this.metrics.resets.inc(resets);
  }

  /**
   * Takes `boards` out of the streams `predicate` selects (docs/events.md, "Boards"): each gets an
   * `event: boards` frame and no further events of them; a stream left with no board is closed. Returns
   * how many streams changed.
   */
  narrowWhere(
    predicate: (connection: SseConnection) => readonly string[] | undefined,
    reason: CloseReason = 'access',
  ): number {
    // Events taken before the change reach the streams that may still have them.
    this.flush();
    let changed = 0;
    for (const connection of this.connections()) {
      const asked = predicate(connection);
      if (asked === undefined) continue;
      const removed = connection.boards.filter((board) => asked.includes(board));
      if (removed.length === 0) continue;
      changed += 1;
      if (removed.length === connection.boards.length) {
        // No board left: the client learns which left, then the stream ends.
        connection.write(encodeBoardsRemoved(removed, ''));
        connection.close(reason);
        continue;
      }
      this.detach(connection);
      connection.narrow(removed, this.fanned);
      if (connection.closed) {
        // The frame overflowed its buffer: it was closed as slow while out of its group.
        this.connectionCount -= 1;
        this.metrics.sseConnections.dec();
        this.metrics.slowConsumerCloses.inc();
      } else {
        this.attach(connection);
      }
    }
    return changed;
  }

  /** A removed board: no stream carries it any more, and its position is forgotten. */
  dropBoard(board: string): number {
    const changed = this.narrowWhere((connection) =>
      connection.boards.includes(board) ? [board] : undefined,
    );
    this.taken.delete(board);
    this.recent.drop(board);
    const fanned = new Map(this.fanned);
    fanned.delete(board);
    this.fanned = fanned;
    return changed;
  }

  /** Every open connection (a snapshot: closing one while iterating is safe). */
  private connections(): SseConnection[] {
    const all: SseConnection[] = [];
    for (const boardSet of this.boardSets.values())
      for (const group of boardSet.filters.values())
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
    for (const connection of this.connections()) if (predicate(connection)) count += 1;
    return count;
  }

  startHeartbeats(): void {
    if (this.heartbeatTimer) return;
    const tickMs = Math.max(250, Math.floor(this.heartbeatMs / 4));
    this.heartbeatTimer = setInterval(() => {
      const now = Date.now();
      const due = now - this.heartbeatMs;
      const frame = this.sourceLive() ? this.heartbeatEvent : HEARTBEAT_FRAME;
      for (const boardSet of this.boardSets.values())
        for (const group of boardSet.filters.values())
          for (const connection of group.connections)
            if (connection.lastWriteAt <= due) connection.write(frame, now);
    }, tickMs);
    this.heartbeatTimer.unref();
  }

  stopHeartbeats(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }
}

/** An event of a flush as one board set frames it: its `id:` line carries that set's cursor. */
interface FramedEvent {
  /** Index of the event in the flush (for its topic). */
  readonly index: number;
  readonly event: FannedEvent;
  readonly idLine: Buffer;
}

/**
 * The flush's events of the set's boards, each with the set's cursor after it: the fan-out positions
 * before the flush, moved along event by event (docs/events.md, "Resume").
 */
function frameForBoardSet(
  boardSet: BoardSetGroup,
  events: readonly FannedEvent[],
  before: ReadonlyMap<string, string>,
): FramedEvent[] {
  const framed: FramedEvent[] = [];
  let ids: (string | undefined)[] | undefined;
  events.forEach((event, index) => {
    const at = boardSet.index.get(event.board);
    if (at === undefined) return;
    ids ??= boardSet.boards.map((board) => before.get(board));
    ids[at] = event.id;
    framed.push({ index, event, idLine: encodeIdLine(formatPositions(boardSet.boards, ids)) });
  });
  return framed;
}

/**
 * The frames one group takes from a flush, joined once for all its connections, and framed once as one
 * HTTP/1.1 chunk (`bytes` is a view into `chunk`: no second copy).
 */
function joinBatch(framed: readonly FramedEvent[], positions: ReadonlyMap<string, string>): FrameBatch {
  let length = 0;
  for (const { idLine, event } of framed) length += idLine.length + event.body.length;
  const head = encodeChunkHead(length);
  const parts: Buffer[] = [head];
  for (const { idLine, event } of framed) parts.push(idLine, event.body);
  parts.push(CHUNK_END);
  const chunk = Buffer.concat(parts, head.length + length + CHUNK_END.length);
  const bytes = chunk.subarray(head.length, head.length + length);
  return { events: framed.map(({ event }) => event), bytes, chunk, positions };
}
