// The soak's SSE client (docs/reliability.md, "Soak"): one raw socket per stream, thousands per worker
// thread, in the manner of the bench's client (bench/sse-client.ts) but keeping what a browser keeps
// across reconnects. The frame `id:` is opaque text (a bare stream id today, a board cursor such as
// `main:<id>` later) that the client only echoes back as Last-Event-ID; loss, duplicates and order are
// read from the envelope in `data:` (its `id`, and the publisher's `value` = 1, 2, 3…).
import net from 'node:net';
import type { SharedHistogram } from '../../bench/histogram.ts';

/** Slots of the Int32 counters every client thread of the soak shares (Atomics). */
export const SLOT = {
  /** Measured event frames received, duplicates included. */
  deliveries: 0,
  /** Streams currently open (answered 200). */
  open: 1,
  /** Streams the server ended that the client reopened with Last-Event-ID. */
  reconnects: 2,
  /** Connection attempts that failed (refused, non-200, closed before the headers). */
  errors: 3,
  /** `reset` events received: the server could not resume a client (a loss by definition). */
  resets: 4,
  /** Streams that opened at least once. */
  opened: 5,
} as const;
export const LATENCY_OFFSET = 8;

export interface SoakClientContext {
  host: string;
  port: number;
  counters: Int32Array;
  /** Publish stamp (`ts`) to arrival, microseconds. */
  latency: SharedHistogram;
}

/** One client's accounting: O(1) per client, so 2,000 streams x 60,000 events need no bitmap. */
export interface ClientTally {
  /** Highest `value` received (0 before the first measured event). */
  lastValue: number;
  /** Values skipped over (a gap between two received values). */
  gaps: number;
  /** Values received again or out of order (value <= lastValue). */
  duplicates: number;
  /** Envelope ids not greater than the previous one. */
  idRegressions: number;
  resets: number;
  opens: number;
}

const HEADER_END = '\r\n\r\n';
const FRAME_END = Buffer.from('\n\n');
const VALUE_KEY = Buffer.from('"value":');
const TS_KEY = Buffer.from('"ts":');
const ID_KEY = Buffer.from('"id":"');
const LF = 0x0a;
const EMPTY = Buffer.alloc(0);
const FAILED_RETRY_MS = 1000;

/** `a-b` stream ids compared as two integers (the envelope id is always a Redis stream id). */
function idAfter(ms: number, seq: number, lastMs: number, lastSeq: number): boolean {
  return ms > lastMs || (ms === lastMs && seq > lastSeq);
}

export class SoakClient implements ClientTally {
  lastValue = 0;
  gaps = 0;
  duplicates = 0;
  idRegressions = 0;
  resets = 0;
  opens = 0;
  /** Why the last failed connection attempt failed (a status line or a socket error), for the report. */
  lastError: string | undefined;
  /** The last frame `id:` as sent: echoed verbatim as Last-Event-ID. */
  private cursor: string | undefined;
  private lastIdMs = -1;
  private lastIdSeq = -1;
  private retryMs = 1000;
  private socket: net.Socket | undefined;
  private wanted = false;
  private headers = '';
  private chunked = false;
  private chunkLeft = 0;
  private chunkState: 'size' | 'data' | 'crlf' = 'size';
  private sizeText = '';
  private carry: Buffer = EMPTY;
  private now = 0;

  constructor(
    private readonly context: SoakClientContext,
    private readonly cookie: string,
    private readonly localAddress: string,
  ) {}

  /** Opens the stream; resolves once it answered 200, rejects with the reason otherwise. */
  connect(): Promise<void> {
    const { host, port, counters } = this.context;
    this.wanted = true;
    this.headers = '';
    this.chunkState = 'size';
    this.sizeText = '';
    this.carry = EMPTY;
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, localAddress: this.localAddress });
      this.socket = socket;
      socket.setNoDelay(true);
      let settled = false;
      let opened = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        this.lastError = error.message;
        Atomics.add(counters, SLOT.errors, 1);
        socket.destroy();
        reject(error);
      };
      socket.on('connect', () => {
        const lines = [
          'GET /events HTTP/1.1',
          `Host: ${host}:${port}`,
          'Accept: text/event-stream',
          `Cookie: ${this.cookie}`,
        ];
        if (this.cursor !== undefined) lines.push(`Last-Event-ID: ${this.cursor}`);
        socket.write(`${lines.join('\r\n')}${HEADER_END}`);
      });
      socket.on('data', (chunk: Buffer) => {
        if (opened) {
          this.onBody(chunk);
          return;
        }
        this.headers += chunk.toString('latin1');
        const end = this.headers.indexOf(HEADER_END);
        if (end === -1) return;
        const head = this.headers.slice(0, end);
        if (!head.startsWith('HTTP/1.1 200')) {
          fail(new Error(`stream answered ${head.split('\r\n')[0]}`));
          return;
        }
        this.chunked = /\r\ntransfer-encoding:\s*chunked/i.test(head);
        opened = true;
        settled = true;
        this.opens += 1;
        if (this.opens === 1) Atomics.add(counters, SLOT.opened, 1);
        Atomics.add(counters, SLOT.open, 1);
        const rest = Buffer.from(this.headers.slice(end + HEADER_END.length), 'latin1');
        this.headers = '';
        resolve();
        if (rest.length > 0) this.onBody(rest);
      });
      socket.on('error', (error) => fail(error));
      socket.on('close', () => {
        if (!settled) fail(new Error('closed before the response headers'));
        if (opened) Atomics.sub(counters, SLOT.open, 1);
        // The server ended the stream (a reload, a slow-consumer close): come back as a browser does.
        if (opened && this.wanted && this.socket === socket) {
          Atomics.add(counters, SLOT.reconnects, 1);
          this.reconnectAfter(this.retryMs);
        }
      });
    });
  }

  /** Keeps trying until the stream is open again (a draining or starting worker may refuse). */
  private reconnectAfter(ms: number): void {
    setTimeout(() => {
      if (!this.wanted) return;
      this.connect().catch(() => this.reconnectAfter(FAILED_RETRY_MS));
    }, ms);
  }

  close(): void {
    this.wanted = false;
    this.socket?.destroy();
  }

  private onBody(chunk: Buffer): void {
    if (!this.chunked) this.onBytes(chunk, 0, chunk.length);
    else this.onChunked(chunk);
  }

  /** Strips HTTP/1.1 chunked framing (size line, data, CRLF). */
  private onChunked(chunk: Buffer): void {
    let position = 0;
    while (position < chunk.length) {
      if (this.chunkState === 'data') {
        const take = Math.min(this.chunkLeft, chunk.length - position);
        this.onBytes(chunk, position, position + take);
        position += take;
        this.chunkLeft -= take;
        if (this.chunkLeft === 0) this.chunkState = 'crlf';
      } else if (this.chunkState === 'crlf') {
        if (chunk[position] === LF) this.chunkState = 'size';
        position += 1;
      } else {
        const newline = chunk.indexOf(LF, position);
        if (newline === -1) {
          this.sizeText += chunk.toString('latin1', position);
          return;
        }
        this.sizeText += chunk.toString('latin1', position, newline);
        position = newline + 1;
        this.chunkLeft = parseInt(this.sizeText, 16);
        this.sizeText = '';
        if (this.chunkLeft > 0) this.chunkState = 'data';
      }
    }
  }

  /** Splits bytes into SSE frames (blank-line separated); a frame cut by the read waits for the rest. */
  private onBytes(source: Buffer, from: number, to: number): void {
    let data = source;
    let start = from;
    let limit = to;
    if (this.carry.length > 0) {
      data = Buffer.concat([this.carry, source.subarray(from, to)]);
      start = 0;
      limit = data.length;
    }
    let end = data.indexOf(FRAME_END, start);
    if (end !== -1 && end < limit) this.now = performance.timeOrigin + performance.now();
    while (end !== -1 && end < limit) {
      this.onFrame(data, start, end);
      start = end + 2;
      end = data.indexOf(FRAME_END, start);
    }
    this.carry = start < limit ? Buffer.from(data.subarray(start, limit)) : EMPTY;
  }

  /** One frame in data[start, end): its fields found with indexOf, not split into strings (2,000 x 100/s). */
  private onFrame(data: Buffer, start: number, end: number): void {
    let id: string | undefined;
    let isReset = false;
    let dataFrom = -1;
    let dataTo = -1;
    let position = start;
    while (position < end) {
      let lineEnd = data.indexOf(LF, position);
      if (lineEnd === -1 || lineEnd > end) lineEnd = end;
      const first = data[position];
      if (first === 0x69 && data[position + 1] === 0x64 && data[position + 2] === 0x3a) {
        // `id:` (opaque: kept as sent)
        const from = data[position + 3] === 0x20 ? position + 4 : position + 3;
        id = data.toString('latin1', from, lineEnd);
      } else if (first === 0x64 && data.toString('latin1', position, position + 5) === 'data:') {
        dataFrom = data[position + 5] === 0x20 ? position + 6 : position + 5;
        dataTo = lineEnd;
      } else if (first === 0x65 && /^event: ?reset\s*$/.test(data.toString('latin1', position, lineEnd))) {
        isReset = true;
      } else if (first === 0x72 && data.toString('latin1', position, position + 6) === 'retry:') {
        const retry = Number(data.toString('latin1', position + 6, lineEnd).trim());
        if (Number.isFinite(retry) && retry > 0) this.retryMs = retry;
      }
      position = lineEnd + 1;
    }
    if (id !== undefined) this.cursor = id;
    if (isReset) {
      this.resets += 1;
      Atomics.add(this.context.counters, SLOT.resets, 1);
      return;
    }
    if (id === undefined || dataFrom === -1) return;
    this.onEnvelope(data.subarray(dataFrom, dataTo));
  }

  private onEnvelope(data: Buffer): void {
    const value = readNumber(data, VALUE_KEY);
    // Warm-up events (value 0) only move the cursor; other event types are not the soak's.
    if (value <= 0) return;
    const { counters, latency } = this.context;
    Atomics.add(counters, SLOT.deliveries, 1);
    const ts = readNumber(data, TS_KEY);
    if (ts > 0) latency.record((this.now - ts) * 1000);
    const at = data.indexOf(ID_KEY);
    if (at !== -1) {
      const text = data.toString('latin1', at + ID_KEY.length, data.indexOf(0x22, at + ID_KEY.length));
      const dash = text.indexOf('-');
      const ms = Number(text.slice(0, dash));
      const seq = Number(text.slice(dash + 1));
      if (!idAfter(ms, seq, this.lastIdMs, this.lastIdSeq)) this.idRegressions += 1;
      this.lastIdMs = ms;
      this.lastIdSeq = seq;
    }
    if (value <= this.lastValue) {
      this.duplicates += 1;
      return;
    }
    this.gaps += value - this.lastValue - 1;
    this.lastValue = value;
  }
}

/** The non-negative integer after `key` in data, or -1. */
function readNumber(data: Buffer, key: Buffer): number {
  const at = data.indexOf(key);
  if (at === -1) return -1;
  let value = 0;
  let digits = 0;
  for (let index = at + key.length; index < data.length; index += 1) {
    const digit = data[index]! - 48;
    if (digit < 0 || digit > 9) break;
    value = value * 10 + digit;
    digits += 1;
  }
  return digits > 0 ? value : -1;
}
