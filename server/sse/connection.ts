// One SSE client. Keeps the stream independent of Koa (as better-sse's Connection does): the route hands
// `stream` to Koa as the body, the hub only calls `deliver`.
import { PassThrough } from 'node:stream';
import type { ServerResponse } from 'node:http';
import { compareStreamIds } from '../../shared/events.ts';
import type { TopicFilter } from './topics.ts';

export type CloseReason = 'client' | 'slow' | 'shutdown' | 'logout' | 'limit' | 'error';

export interface SseConnectionOptions {
  topics: TopicFilter;
  /** Unsent bytes (including live events held during a replay) above which the client is closed as slow. */
  maxBufferBytes: number;
  /** The response the stream is piped into, to count bytes queued in the socket too. */
  response: ServerResponse;
  /** Id of the session that opened the stream, to close it on logout. */
  sessionId?: string;
  /** Name of the user that opened the stream. */
  userName?: string;
  /** Id the client already has (Last-Event-ID); nothing at or before it is sent again. */
  lastId?: string;
  /** How long a replay waits for a client that reads nothing before closing it as slow. Default 30 s. */
  stallTimeoutMs?: number;
}

/** Between polls while waiting for room, in case neither stream emits 'drain' (e.g. bytes left in Koa's pipe). */
const ROOM_POLL_MS = 100;

export class SseConnection {
  readonly stream = new PassThrough();
  readonly topics: TopicFilter;
  readonly sessionId: string | undefined;
  readonly userName: string | undefined;
  /** Id of the last event written; live events at or before it are duplicates and skipped. */
  lastId: string | undefined;
  lastWriteAt = Date.now();
  closeReason: CloseReason | undefined;
  private readonly maxBufferBytes: number;
  private readonly stallTimeoutMs: number;
  private readonly response: ServerResponse;
  /** Live frames held while a replay runs; null when live. */
  private held: { id: string; frame: Buffer }[] | null = null;
  private heldBytes = 0;
  private readonly closeListeners: ((reason: CloseReason) => void)[] = [];

  constructor(options: SseConnectionOptions) {
    this.topics = options.topics;
    this.maxBufferBytes = options.maxBufferBytes;
    this.stallTimeoutMs = options.stallTimeoutMs ?? 30_000;
    this.response = options.response;
    this.sessionId = options.sessionId;
    this.userName = options.userName;
    this.lastId = options.lastId;
    this.stream.on('close', () => this.close('client'));
    this.response.on('close', () => this.close('client'));
  }

  get closed(): boolean {
    return this.closeReason !== undefined;
  }

  /** Bytes written but not yet handed to the kernel: ours, Koa's pipe and the socket's, plus held ones. */
  get pendingBytes(): number {
    return (
      this.stream.writableLength + this.stream.readableLength + this.response.writableLength + this.heldBytes
    );
  }

  onClose(listener: (reason: CloseReason) => void): void {
    this.closeListeners.push(listener);
  }

  /** Whether `bytes` more would pass the limit. An empty buffer always takes one frame, however large. */
  private wouldOverflow(bytes: number): boolean {
    const pending = this.pendingBytes;
    return pending > 0 && pending + bytes > this.maxBufferBytes;
  }

  /** Writes raw bytes (retry, comments, reset); false when the connection is or becomes closed. */
  write(frame: Buffer): boolean {
    if (this.closed) return false;
    if (this.wouldOverflow(frame.length)) {
      this.close('slow');
      return false;
    }
    // Once Koa has sent the headers and its pipe holds nothing of ours, write to the response directly:
    // the PassThrough hop costs a transform and an event per frame, at every connection of every event.
    // Order is kept (the pipe is empty) and pendingBytes still counts what the socket holds.
    if (this.response.headersSent && this.stream.readableLength === 0 && this.stream.writableLength === 0) {
      this.response.write(frame);
    } else {
      this.stream.write(frame);
    }
    this.lastWriteAt = Date.now();
    return true;
  }

  /** Delivers one encoded event in id order, skipping duplicates; held while a replay runs. */
  deliver(id: string, frame: Buffer): boolean {
    if (this.closed) return false;
    if (this.held) {
      if (this.wouldOverflow(frame.length)) {
        this.close('slow');
        return false;
      }
      this.held.push({ id, frame });
      this.heldBytes += frame.length;
      return false;
    }
    if (this.lastId !== undefined && compareStreamIds(id, this.lastId) <= 0) return false;
    if (!this.write(frame)) return false;
    this.lastId = id;
    return true;
  }

  /** Holds live events until `endReplay`, so replayed and live events interleave in id order. */
  beginReplay(): void {
    this.held ??= [];
  }

  /** Writes a replayed event directly (the hold does not apply to it). */
  replay(id: string, frame: Buffer): boolean {
    if (this.closed) return false;
    if (this.lastId !== undefined && compareStreamIds(id, this.lastId) <= 0) return false;
    if (!this.write(frame)) return false;
    this.lastId = id;
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
          this.stream.off('drain', done);
          this.response.off('drain', done);
          this.stream.off('close', done);
          resolve();
        };
        const timer = setTimeout(done, ROOM_POLL_MS);
        this.stream.once('drain', done);
        this.response.once('drain', done);
        this.stream.once('close', done);
      });
    }
  }

  /** Releases the held live events (those not already replayed) and goes live. */
  endReplay(): number {
    const held = this.held ?? [];
    this.held = null;
    this.heldBytes = 0;
    let delivered = 0;
    for (const { id, frame } of held) if (this.deliver(id, frame)) delivered += 1;
    return delivered;
  }

  close(reason: CloseReason): void {
    if (this.closed) return;
    this.closeReason = reason;
    this.held = null;
    this.heldBytes = 0;
    // A slow client's queued bytes are dropped at once (memory stays bounded); others get what was sent.
    if (reason === 'slow') this.stream.destroy();
    else this.stream.end();
    for (const listener of this.closeListeners) listener(reason);
  }
}
