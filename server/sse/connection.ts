// One SSE client. Keeps the stream independent of Koa (as better-sse's Connection does): the route hands
// `stream` to Koa as the body, the hub only calls `deliver`.
import { PassThrough } from 'node:stream';
import type { ServerResponse } from 'node:http';
import { compareStreamIds } from '../../shared/events.ts';
import type { TopicFilter } from './topics.ts';

export type CloseReason = 'client' | 'slow' | 'shutdown' | 'logout' | 'limit';

export interface SseConnectionOptions {
  topics: TopicFilter;
  /** Unsent bytes above which the client is closed as a slow consumer. */
  maxBufferBytes: number;
  /** The response the stream is piped into, to count bytes queued in the socket too. */
  response: ServerResponse;
  /** Id of the session that opened the stream, to close it on logout. */
  sessionId?: string;
  /** Name of the user that opened the stream. */
  userName?: string;
  /** Id the client already has (Last-Event-ID); nothing at or before it is sent again. */
  lastId?: string;
}

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
  private readonly response: ServerResponse;
  /** Live frames held while a replay runs; null when live. */
  private held: { id: string; frame: Buffer }[] | null = null;
  private readonly closeListeners: ((reason: CloseReason) => void)[] = [];

  constructor(options: SseConnectionOptions) {
    this.topics = options.topics;
    this.maxBufferBytes = options.maxBufferBytes;
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

  /** Bytes written but not yet handed to the kernel: ours, Koa's pipe and the socket's. */
  get pendingBytes(): number {
    return this.stream.writableLength + this.stream.readableLength + this.response.writableLength;
  }

  onClose(listener: (reason: CloseReason) => void): void {
    this.closeListeners.push(listener);
  }

  /** Writes raw bytes (retry, comments, reset); false when the connection is or becomes closed. */
  write(frame: Buffer): boolean {
    if (this.closed) return false;
    if (this.pendingBytes + frame.length > this.maxBufferBytes) {
      this.close('slow');
      return false;
    }
    this.stream.write(frame);
    this.lastWriteAt = Date.now();
    return true;
  }

  /** Delivers one encoded event in id order, skipping duplicates; held while a replay runs. */
  deliver(id: string, frame: Buffer): boolean {
    if (this.closed) return false;
    if (this.held) {
      this.held.push({ id, frame });
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
    const held = this.held;
    this.held = null;
    try {
      return this.deliver(id, frame);
    } finally {
      this.held = held;
    }
  }

  endReplay(): number {
    const held = this.held ?? [];
    this.held = null;
    let delivered = 0;
    for (const { id, frame } of held) if (this.deliver(id, frame)) delivered += 1;
    return delivered;
  }

  close(reason: CloseReason): void {
    if (this.closed) return;
    this.closeReason = reason;
    this.held = null;
    if (reason === 'slow') this.stream.destroy();
    else this.stream.end();
    for (const listener of this.closeListeners) listener(reason);
  }
}
