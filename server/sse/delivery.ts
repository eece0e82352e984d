// The two seams between the event bus and SSE delivery, so the dependency runs one way (docs/architecture.md,
// "One-way event path"): the bus hands sequenced events to an `EventDelivery` (the hub implements it, as
// mercure's hub sits behind its Transport), and the `/events` route reads missed events through an
// `EventLogReader` it is given. Nothing in server/sse/ imports server/bus/.
import type { Envelope } from '../../shared/events.ts';

/**
 * How a replay ended: `replayed` (every event after the id was handed over), `trimmed` (events after the
 * id may be gone from the log: the reader must start over from a snapshot), `ahead` (the id is newer than
 * anything in the log: it was never issued by this log, e.g. Redis lost its data), `stopped` (the
 * consumer asked to stop).
 */
export type ReplayOutcome =
  | { kind: 'replayed'; count: number }
  | { kind: 'trimmed' }
  | { kind: 'ahead'; lastId: string }
  | { kind: 'stopped'; count: number };

/**
 * The newest events of a board's log when a worker starts following the board: every event of the log
 * after `floor` is in `events`, oldest first, and the board's position is the last one's id (`floor` when
 * there is none).
 */
export interface BoardStart {
  /** An id the log holds (the oldest entry read and left out), or `0-0` for an empty log. */
  readonly floor: string;
  readonly events: readonly Envelope[];
}

/** The position a board starts at: the newest id of its log. */
export function startPosition(start: BoardStart): string {
  return start.events.at(-1)?.id ?? start.floor;
}

/** Where sequenced events go once the worker has them, in id order per board. */
export interface EventDelivery {
  /** Takes one event; ids not newer than the last one taken of its board are duplicates and ignored. */
  deliver(envelope: Envelope): void;
  /** Board -> id of the newest event taken (or the board's starting position): where a gap fill resumes. */
  positions(): ReadonlyMap<string, string>;
  /** Whether the delivery has a position for `board`. */
  knowsBoard(board: string): boolean;
  /**
   * Where a board not seen yet starts: the newest events of its log, read once its channel is subscribed
   * (docs/architecture.md, "Replays from memory"). Ignored for a board the delivery has a position for.
   */
  startBoard(board: string, start: BoardStart): void;
  /**
   * Tells the clients of `board` to refetch its snapshot (the worker lost events it cannot replay). With
   * `restartAt`, ids of the board seen so far no longer hold back newer events: the log they came from is
   * gone.
   */
  resetBoard(board: string, reason: string, options?: { restartAt?: string }): void;
}

/** Read access to the boards' event logs, for replays on resume. */
export interface EventLogReader {
  /**
   * Hands every event of `board` after `afterId` to `onBatch`, oldest first; `onBatch` may be async and
   * returns false to stop. The events may be shared with other replays: read only.
   */
  replaySince(
    board: string,
    afterId: string,
    onBatch: (events: readonly Envelope[]) => unknown,
  ): Promise<ReplayOutcome>;
}
