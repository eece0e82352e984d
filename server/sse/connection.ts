// One SSE client once its headers are out: the raw response and a few fields, nothing of Koa, the session
// or a stream transform (docs/architecture.md, "Light connections"). The hub hands it whole batches of
// frames (`deliverBatch`); the route writes the preamble and replays through it.
import type { ServerResponse } from 'node:http';
import { formatCursorOver } from '../../shared/cursor.ts';
import { compareStreamIds } from '../../shared/events.ts';
import { encodeBoardsRemoved, encodeIdLine } from './frame.ts';
import type { TopicFilter } from './topics.ts';

export type CloseReason = 'client' | 'slow' | 'shutdown' | 'logout' | 'limit' | 'error' | 'access';

/** One event of a flush: its board, id and frame body (`event:` and `data:`), encoded once per worker. */
export interface FannedEvent {
  readonly board: string;
  readonly id: string;
  readonly body: Buffer;
}

/**
 * The events of one hub flush that one group (board set and topic filter) takes, oldest first, and the
 * same events as frames whose `id:` is the group cursor, joined once into `bytes`: every connection of the
 * group that is at the group cursor gets them in a single write.
 */
export interface FrameBatch {
  readonly events: readonly FannedEvent[];
  readonly bytes: Buffer;
  /** `bytes` framed once as an HTTP/1.1 chunk (size line, bytes, CRLF) for every chunked response of the group. */
  readonly chunk: Buffer;
  /** The worker's fan-out position of every board after this flush: the group cursor's ids. */
  readonly positions: ReadonlyMap<string, string>;
}

export interface SseConnectionOptions {
  topics: TopicFilter;
  /** The boards the stream carries, sorted; the hub keeps it as the connection's group key. */
  boards: readonly string[];
  /** Unsent bytes (including live events held during a replay) above which the client is closed as slow. */
  maxBufferBytes: number;
  /** The response, headers already sent; frames are written to it and its queue counts as unsent. */
  response: ServerResponse;
  /** Public handle of the session that opened the stream, to close it on logout. */
  sessionHandle?: string;
  /** Name of the user that opened the stream. */
  userName?: string;
  /** How long a replay waits for a client that reads nothing before closing it as slow. Default 30 s. */
  stallTimeoutMs?: number;
}

/** The connection a response carries, for `closeConnectionOf`. */
const CONNECTION = Symbol('pulseboard.sseConnection');

/** The close listener of every stream's response (`this` is the response). */
function closeConnectionOf(this: ServerResponse): void {
  const connection: unknown = Reflect.get(this, CONNECTION);
  if (connection instanceof SseConnection) connection.close('client');
}

/**
 * The whole frame (`id:` line and body) of a replayed event on a one-board stream, per event object: the
 * memory replays hand every resuming stream the same kept events (server/sse/recent-events.ts), so in a
 * reconnect storm each is framed once per worker instead of once per stream. Weak: a frame goes with its
 * event once the event leaves the worker's recent events.
 */
const ONE_BOARD_FRAMES = new WeakMap<object, Buffer>();

/** Between polls while waiting for room, in case the response emits no 'drain'. */
const ROOM_POLL_MS = 100;

export class SseConnection {
  readonly topics: TopicFilter;
  readonly sessionHandle: string | undefined;
  readonly userName: string | undefined;
  /** When anything was last written; the hub's heartbeat timer writes to connections silent for too long. */
  lastWriteAt = Date.now();
  closeReason: CloseReason | undefined;
  private carried: readonly string[];
  private readonly maxBufferBytes: number;
  private readonly stallTimeoutMs: number;
  private readonly response: ServerResponse;
  /**
   * This client's own position per board while it differs from its group's (a resume, a replay that read
   * further than the worker's fan-out, docs/architecture.md "Cursors only while catching up"); undefined
   * once it equals the group cursor, from then on the shared frames carry the right ids.
   */
  private cursor: Map<string, string> | undefined;
  /** Live events held while a replay runs; null when live. */
  private held: FannedEvent[] | null = null;
  private heldBytes = 0;
  private closeListener: ((connection: SseConnection, reason: CloseReason) => void) | undefined;

  constructor(options: SseConnectionOptions) {
    this.topics = options.topics;
    this.carried = options.boards;
    this.maxBufferBytes = options.maxBufferBytes;
    this.stallTimeoutMs = options.stallTimeoutMs ?? 30_000;
    this.response = options.response;
    this.sessionHandle = options.sessionHandle;
    this.userName = options.userName;
    // One shared listener that finds the connection on the response: no closure per stream, and `on`, not
    // `once` (a response closes once; `once` adds a wrapper and its state per stream).
    Reflect.set(this.response, CONNECTION, this);
    this.response.on('close', closeConnectionOf);
  }

  get closed(): boolean {
    return this.closeReason !== undefined;
  }

  /** The boards this stream carries, sorted. */
  get boards(): readonly string[] {
    return this.carried;
  }

  /** Takes `boards`, the same names as its own, as its list: the hub's, shared by its board set. */
  shareBoards(boards: readonly string[]): void {
    if (boards !== this.carried && boards.join(',') === this.carried.join(',')) this.carried = boards;
  }

  /** Whether the client is ahead of its group for some board (or replaying) and gets its own frames. */
  get catchingUp(): boolean {
    return this.cursor !== undefined;
  }

  /** Bytes written but not yet handed to the kernel (the response's and its socket's), plus held ones. */
  get pendingBytes(): number {
    return this.response.writableLength + this.heldBytes;
  }

  /** The client's cursor as frame id text; `positions` (the worker's fan-out) when it is at its group's. */
  cursorText(positions: ReadonlyMap<string, string>): string {
    return formatCursorOver(this.carried, this.cursor ?? positions);
  }

  /** One listener, the hub's: it owns the connection and drops it on close. */
  onClose(listener: (connection: SseConnection, reason: CloseReason) => void): void {
    this.closeListener = listener;
  }

  /** Whether `bytes` more would pass the limit. An empty buffer always takes one write, however large. */
  private wouldOverflow(bytes: number): boolean {
    const pending = this.pendingBytes;
    return pending > 0 && pending + bytes > this.maxBufferBytes;
  }

  /** Writes raw bytes (retry, comments, reset, heartbeats); false when the connection is or becomes closed. */
  write(bytes: Buffer, now = Date.now()): boolean {
    if (this.closeReason !== undefined) return false;
    if (this.wouldOverflow(bytes.length)) {
      this.close('slow');
      return false;
    }
    this.response.write(bytes);
    this.lastWriteAt = now;
    return true;
  }

  /** The live path: one write of the group's joined frames; returns how many events were written. */
  deliverBatch(batch: FrameBatch, now: number): number {
    if (this.closeReason !== undefined) return 0;
    if (this.held !== null) {
      this.hold(batch);
      return 0;
    }
    if (this.cursor !== undefined) return this.deliverOwn(batch, now);
    if (!this.writeChunk(batch, now)) return 0;
    return batch.events.length;
  }

  /**
   * The live path's one write: the group's pre-framed chunk straight to the socket, one system call and
   * none of ServerResponse's per-write work (size line, data and CRLF as four writes, a cork, a four-part
   * writev on the next tick: 2.8 of 15 µs per write, docs/performance.md "50,000 streams"). Only while the
   * response frames chunks, its headers are out and it holds nothing of its own that the chunk would pass;
   * otherwise through the response.
   */
  private writeChunk(batch: FrameBatch, now: number): boolean {
    const response = this.response;
    const socket = response.socket;
    if (
      socket === null ||
      !response.chunkedEncoding ||
      Reflect.get(response, '_headerSent') !== true ||
      response.writableEnded ||
      !socket.writable ||
      response.writableLength !== socket.writableLength
    ) {
      return this.write(batch.bytes, now);
    }
    if (this.closeReason !== undefined) return false;
    if (this.wouldOverflow(batch.bytes.length)) {
      this.close('slow');
      return false;
    }
    socket.write(batch.chunk);
    this.lastWriteAt = now;
    return true;
  }

  /**
   * While catching up: only the events past this client's cursor, with its own cursor as their ids, still
   * in one write; then, if its cursor has become the group's for every board, back to the shared frames.
   */
  private deliverOwn(batch: FrameBatch, now: number): number {
    const newer = this.takeNewer(batch.events);
    this.advanceTo(batch.positions);
    if (newer.length === 0) return 0;
    return this.write(newer.bytes, now) ? newer.length : 0;
  }

  /** The events past the cursor, framed with the cursor after each; moves the cursor over them. */
  private takeNewer(events: readonly FannedEvent[]): { bytes: Buffer; length: number } {
    const cursor = (this.cursor ??= new Map());
    const parts: Buffer[] = [];
    for (const event of events) {
      const have = cursor.get(event.board);
      if (have !== undefined && compareStreamIds(event.id, have) <= 0) continue;
      cursor.set(event.board, event.id);
      parts.push(encodeIdLine(formatCursorOver(this.carried, cursor)), event.body);
    }
    return { bytes: parts.length === 0 ? Buffer.alloc(0) : Buffer.concat(parts), length: parts.length / 2 };
  }

  /**
   * Moves the cursor up to the worker's fan-out positions (everything up to them was written, replayed or
   * filtered out); drops it when it equals them for every board, so the shared frames apply again.
   */
  private advanceTo(positions: ReadonlyMap<string, string>): void {
    const cursor = this.cursor;
    if (cursor === undefined) return;
    let atGroup = true;
    for (const board of this.carried) {
      const position = positions.get(board);
      const have = cursor.get(board);
      if (position === undefined) {
        if (have !== undefined) atGroup = false;
      } else if (have === undefined || compareStreamIds(position, have) > 0) {
        cursor.set(board, position);
      } else if (have !== position) {
        atGroup = false;
      }
    }
    if (atGroup) this.cursor = undefined;
  }

  private hold(batch: FrameBatch): void {
    let bytes = 0;
    for (const event of batch.events) bytes += event.body.length;
    if (this.wouldOverflow(bytes)) {
      this.close('slow');
      return;
    }
    this.held?.push(...batch.events);
    this.heldBytes += bytes;
  }

  /**
   * Starts a resume: live events are held until `endReplay`, so replayed and live events interleave in id
   * order. The cursor is the client's for the boards it names and the worker's position for the others,
   * which start live (docs/events.md, "Resume").
   */
  beginReplay(resume: ReadonlyMap<string, string>, positions: ReadonlyMap<string, string>): void {
    const cursor = new Map<string, string>();
    for (const board of this.carried) {
      const id = resume.get(board) ?? positions.get(board);
      if (id !== undefined) cursor.set(board, id);
    }
    this.cursor = cursor;
    this.held ??= [];
  }

  /** Writes a replayed event of `board` directly (the hold does not apply); skips ids the client has. */
  replay(board: string, id: string, body: Buffer): boolean {
    if (this.closeReason !== undefined || !this.carried.includes(board)) return false;
    const cursor = (this.cursor ??= new Map());
    const have = cursor.get(board);
    if (have !== undefined && compareStreamIds(id, have) <= 0) return false;
    cursor.set(board, id);
    if (!this.write(Buffer.concat([encodeIdLine(formatCursorOver(this.carried, cursor)), body])))
      return false;
    return true;
  }

  /**
   * Writes replayed events of `board` in one write (the hold does not apply); skips ids the client has.
   * Returns how many were written.
   */
  replayBatch(board: string, events: readonly { id: string; body: Buffer }[]): number {
    if (this.closeReason !== undefined || !this.carried.includes(board)) return 0;
    const cursor = (this.cursor ??= new Map());
    // A one-board stream's cursor after an event is that event's id alone: its whole frame is the same
    // for every stream that replays it, framed once (docs/performance.md, "The reconnect storm").
    const oneBoard = this.carried.length === 1;
    const parts: Buffer[] = [];
    let count = 0;
    for (const event of events) {
      const { id, body } = event;
      const have = cursor.get(board);
      if (have !== undefined && compareStreamIds(id, have) <= 0) continue;
      cursor.set(board, id);
      count += 1;
      if (!oneBoard) {
        parts.push(encodeIdLine(formatCursorOver(this.carried, cursor)), body);
        continue;
      }
      let frame = ONE_BOARD_FRAMES.get(event);
      if (frame === undefined) {
        frame = Buffer.concat([encodeIdLine(formatCursorOver(this.carried, cursor)), body]);
        ONE_BOARD_FRAMES.set(event, frame);
      }
      parts.push(frame);
    }
    if (count === 0) return 0;
    return this.write(Buffer.concat(parts)) ? count : 0;
  }

  /** The log `board`'s ids came from is gone (or never issued the client's id): newer ids no longer wait. */
  forgetBoard(board: string): void {
    this.cursor?.delete(board);
  }

  /**
   * Resolves once the unsent bytes are at most half the limit, so a replay of thousands of events follows
   * the client's pace instead of tripping the slow-consumer limit. A client that reads nothing for
   * `stallTimeoutMs` is closed as slow.
   */
  async waitForRoom(): Promise<void> {
    const deadline = Date.now() + this.stallTimeoutMs;
    while (!this.closed && this.pendingBytes > this.maxBufferBytes / 2) {
      if (Date.now() > deadline) {
        this.close('slow');
        return;
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.response.off('drain', done);
          this.response.off('close', done);
          resolve();
        };
        const timer = setTimeout(done, ROOM_POLL_MS);
        this.response.once('drain', done);
        this.response.once('close', done);
      });
    }
  }

  /**
   * Releases the held live events not already replayed, in one write, and goes live; returns how many.
   * The replay may have read events the worker has not fanned out yet: the client then keeps its own
   * frames until the worker catches up.
   */
  endReplay(positions: ReadonlyMap<string, string>): number {
    const held = this.held ?? [];
    this.held = null;
    this.heldBytes = 0;
    const newer = this.takeNewer(held);
    this.advanceTo(positions);
    if (newer.length === 0) return 0;
    return this.write(newer.bytes) ? newer.length : 0;
  }

  /**
   * Takes `removed` out of the stream (access revoked, board removed): tells the client with an `event:
   * boards` frame whose id no longer names them. Called by the hub, which regroups the connection.
   */
  narrow(removed: readonly string[], positions: ReadonlyMap<string, string>): void {
    this.carried = this.carried.filter((board) => !removed.includes(board));
    for (const board of removed) this.cursor?.delete(board);
    if (this.held !== null) {
      const kept = this.held.filter((event) => !removed.includes(event.board));
      this.held = kept;
      this.heldBytes = kept.reduce((sum, event) => sum + event.body.length, 0);
    }
    this.write(encodeBoardsRemoved(removed, this.cursorText(positions)));
  }

  close(reason: CloseReason): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    this.held = null;
    this.heldBytes = 0;
    // A slow client's queued bytes are dropped at once (memory stays bounded); others get what was sent.
    if (reason === 'slow') this.response.destroy();
    else this.response.end();
    this.closeListener?.(this, reason);
  }
}
