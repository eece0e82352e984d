// The worker's recent events per board (docs/architecture.md, "Replays from memory"): every event the hub
// fans out stays here, framed body included, for a while. A client resuming from an id these cover (a
// reconnect after a blip, a reload, a reconnect storm) is replayed from memory, with the bodies the hub
// already encoded, instead of reading the board's log in Redis once per client.
import { compareStreamIds } from '../../shared/events.ts';
import type { FannedEvent } from './connection.ts';

/** One fanned-out event, with its topic for the stream's filter. */
export interface RecentEvent extends FannedEvent {
  readonly topic: string;
}

/** Events kept per board, and how long: a board at 100 events/s keeps its last 10 s. */
export const RECENT_EVENTS_PER_BOARD = 1024;
export const RECENT_EVENTS_MAX_AGE_MS = 30_000;

interface BoardRing {
  /**
   * Every event of the board after this id is in `events` (up to the newest fanned out); undefined while
   * that is not known (after a reset, until the next event).
   */
  floor: string | undefined;
  /** Oldest first; `start` is the index of the oldest kept. */
  events: RecentEvent[];
  /** When each kept event was added (ms), parallel to `events`. */
  addedAt: number[];
  start: number;
}

export class RecentEvents {
  private readonly boards = new Map<string, BoardRing>();
  private readonly perBoard: number;
  private readonly maxAgeMs: number;

  constructor(options: { perBoard?: number; maxAgeMs?: number } = {}) {
    this.perBoard = options.perBoard ?? RECENT_EVENTS_PER_BOARD;
    this.maxAgeMs = options.maxAgeMs ?? RECENT_EVENTS_MAX_AGE_MS;
  }

  /**
   * The board's position when the worker starts following it: every later event will be added. With
   * `events` (the newest of its log, oldest first, read once subscribed; `addedAt` parallel to them), every
   * event after `floor` is among them, so resumes from ids since `floor` are covered at once (a worker
   * started by a reload). Ignored when the board is kept already.
   */
  start(
    board: string,
    floor: string,
    events: readonly RecentEvent[] = [],
    addedAt: readonly number[] = [],
    now = 0,
  ): void {
    if (this.boards.has(board)) return;
    const ring: BoardRing = { floor, events: [...events], addedAt: [...addedAt], start: 0 };
    this.boards.set(board, ring);
    this.evict(ring, now);
  }

  /**
   * Forgets what is kept of `board`: its sequence has a hole (a reset). With `position`, every event after
   * it will be added from now on; without, coverage starts again at the next event.
   */
  restart(board: string, position?: string): void {
    this.boards.set(board, { floor: position, events: [], addedAt: [], start: 0 });
  }

  drop(board: string): void {
    this.boards.delete(board);
  }

  /** Adds the next event of its board (ids increase); the oldest go past the count or the age. */
  add(event: RecentEvent, now: number): void {
    let ring = this.boards.get(event.board);
    if (ring === undefined) {
      // A board seen before its start: nothing older is known to be kept.
      ring = { floor: event.id, events: [], addedAt: [], start: 0 };
      this.boards.set(event.board, ring);
      return;
    }
    if (ring.floor === undefined) {
      ring.floor = event.id;
      return;
    }
    ring.events.push(event);
    ring.addedAt.push(now);
    this.evict(ring, now);
  }

  /** Lets the oldest go past the count or the age, moving the floor along. */
  private evict(ring: BoardRing, now: number): void {
    const tooOld = now - this.maxAgeMs;
    while (
      ring.events.length - ring.start > this.perBoard ||
      (ring.start < ring.events.length && (ring.addedAt[ring.start] ?? now) < tooOld)
    ) {
      ring.floor = ring.events[ring.start]?.id ?? ring.floor;
      ring.start += 1;
    }
    // Compact now and then, so the arrays do not grow without bound.
    if (ring.start > this.perBoard) {
      ring.events = ring.events.slice(ring.start);
      ring.addedAt = ring.addedAt.slice(ring.start);
      ring.start = 0;
    }
  }

  /**
   * The kept events of `board` after `afterId`, oldest first, when every event of the board after it up
   * to the newest fanned out is kept; undefined when not (older than what is kept, newer than the newest,
   * a board not followed here): the log in Redis must answer.
   */
  after(board: string, afterId: string): RecentEvent[] | undefined {
    const ring = this.boards.get(board);
    if (ring?.floor === undefined) return undefined;
    if (compareStreamIds(afterId, ring.floor) < 0) return undefined;
    const { events } = ring;
    const newest = events.length > ring.start ? events[events.length - 1]?.id : ring.floor;
    if (newest === undefined || compareStreamIds(afterId, newest) > 0) return undefined;
    // Binary search for the first event after `afterId`.
    let low = ring.start;
    let high = events.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareStreamIds(events[middle]?.id ?? '', afterId) <= 0) low = middle + 1;
      else high = middle;
    }
    return events.slice(low);
  }
}
