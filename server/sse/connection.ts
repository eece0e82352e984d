// One SSE client once its headers are out: the raw response and a few fields, nothing of Koa, the session
// or a stream transform (docs/architecture.md, "Light connections"). The hub hands it whole batches of
// frames (`deliverBatch`); the route writes the preamble and replays through it.
import type { ServerResponse } from 'node:http';
import { compareStreamIds } from '../../shared/events.ts';
import type { TopicFilter } from './topics.ts';

export type CloseReason = 'client' | 'slow' | 'shutdown' | 'logout' | 'limit' | 'error';

/**
 * The events of one hub flush that match one topic filter, oldest first: their frames, and the same
 * frames joined once into `bytes`, which every connection with that filter gets in a single write.
 */
export interface FrameBatch {
  readonly events: readonly EncodedEvent[];
  readonly bytes: Buffer;
}

export interface EncodedEvent {
  readonly id: string;
  readonly frame: Buffer;
}

export interface SseConnectionOptions {
  topics: TopicFilter;
  /** Unsent bytes (including live events held during a replay) above which the client is closed as slow. */
  maxBufferBytes: number;
  /** The response, headers already sent; frames are written to it and its queue counts as unsent. */
  response: ServerResponse;
  /** Public handle of the session that opened the stream, to close it on logout. */
  sessionId?: string;
  /** Name of the user that opened the stream. */
  userName?: string;
  /** Id the client already has (Last-Event-ID); nothing at or before it is sent again. */
  lastId?: string;
  /** How long a replay waits for a client that reads nothing before closing it as slow. Default 30 s. */
  stallTimeoutMs?: number;
}

/** Between polls while waiting for room, in case the response emits no 'drain'. */
const ROOM_POLL_MS = 100;

export class SseConnection {
  readonly topics: TopicFilter;
  readonly sessionId: string | undefined;
  readonly userName: string | undefined;
  /** When anything was last written; the hub's heartbeat timer writes to connections silent for too long. */
  lastWriteAt = Date.now();
  closeReason: CloseReason | undefined;
  private readonly maxBufferBytes: number;
  private readonly stallTimeoutMs: number;
  private readonly response: ServerResponse;
  /** Id of the last event written, or the resume id; nothing at or before it is written again. */
  private cursor: string | undefined;
  /**
   * Whether the cursor may be ahead of the hub's live events (a resume id, or a replay that read events
   * the hub has not fanned out yet). Only then are live ids compared; once a batch starts past the
   * cursor, every later batch does too (the hub delivers in id order).
   */
  private catchingUp = false;
  /** Live frames held while a replay runs; null when live. */
  private held: EncodedEvent[] | null = null;
  private heldBytes = 0;
  private closeListener: ((connection: SseConnection, reason: CloseReason) => void) | undefined;

  constructor(options: SseConnectionOptions) {
    this.topics = options.topics;
    this.maxBufferBytes = options.maxBufferBytes;
    this.stallTimeoutMs = options.stallTimeoutMs ?? 30_000;
    this.response = options.response;
    this.sessionId = options.sessionId;
    this.userName = options.userName;
    this.cursor = options.lastId;
    this.catchingUp = options.lastId !== undefined;
    this.response.once('close', () => this.close('client'));
  }

  get closed(): boolean {
    return this.closeReason !== undefined;
  }

  /** Bytes written but not yet handed to the kernel (the response's and its socket's), plus held ones. */
  get pendingBytes(): number {
    return this.response.writableLength + this.heldBytes;
  }

  /** Id of the last event this client has (written, replayed or its resume id). */
  lastEventId(): string | undefined {
    return this.cursor;
  }

  /** The log this client's ids came from is gone: newer ids no longer wait for the old cursor. */
  forgetCursor(): void {
    this.cursor = undefined;
    this.catchingUp = false;
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

  /** The live path: one write of the batch's joined frames; returns how many events were written. */
  deliverBatch(batch: FrameBatch, now: number): number {
    if (this.closeReason !== undefined) return 0;
    if (this.held !== null) {
      this.hold(batch);
      return 0;
    }
    if (this.catchingUp) return this.deliverNewer(batch, now);
    if (!this.write(batch.bytes, now)) return 0;
    this.cursor = batch.events.at(-1)?.id;
    return batch.events.length;
  }

  /** While catching up: only the frames past the cursor, still in one write. */
  private deliverNewer(batch: FrameBatch, now: number): number {
    const cursor = this.cursor;
    const first = batch.events[0];
    if (cursor === undefined || (first !== undefined && compareStreamIds(first.id, cursor) > 0)) {
      this.catchingUp = false;
      return this.deliverBatch(batch, now);
    }
    const newer = batch.events.filter(({ id }) => compareStreamIds(id, cursor) > 0);
    const last = newer.at(-1);
    if (last === undefined) return 0;
    this.catchingUp = false;
    if (!this.write(Buffer.concat(newer.map(({ frame }) => frame)), now)) return 0;
    this.cursor = last.id;
    return newer.length;
  }

  private hold(batch: FrameBatch): void {
    if (this.wouldOverflow(batch.bytes.length)) {
      this.close('slow');
      return;
    }
    this.held?.push(...batch.events);
    this.heldBytes += batch.bytes.length;
  }

  /** Holds live events until `endReplay`, so replayed and live events interleave in id order. */
  beginReplay(): void {
    this.held ??= [];
  }

  /** Writes a replayed event directly (the hold does not apply to it); skips ids the client has. */
  replay(id: string, frame: Buffer): boolean {
    if (this.closeReason !== undefined) return false;
    if (this.cursor !== undefined && compareStreamIds(id, this.cursor) <= 0) return false;
    if (!this.write(frame)) return false;
    this.cursor = id;
    return true;
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

  /** Releases the held live events not already replayed, in one write, and goes live; returns how many. */
  endReplay(): number {
    const held = this.held ?? [];
    this.held = null;
    this.heldBytes = 0;
    const cursor = this.cursor;
    const newer = cursor === undefined ? held : held.filter(({ id }) => compareStreamIds(id, cursor) > 0);
    // The replay may have read events the hub has not fanned out yet: compare live ids until past them.
    this.catchingUp = this.cursor !== undefined;
    const last = newer.at(-1);
    if (last === undefined || !this.write(Buffer.concat(newer.map(({ frame }) => frame)))) return 0;
    this.cursor = last.id;
    return newer.length;
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
