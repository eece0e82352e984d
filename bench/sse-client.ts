// A cheap SSE client on a raw socket (not EventSource: thousands of them share one thread). It speaks
// just enough HTTP/1.1 (status line, chunked or close-delimited body) and SSE (frames split on a blank
// line, the `id:` field kept as the resume cursor, and the bench payload's `"id":"<ms>-<seq>"`, `"ts":`
// stamp and `"value":` sequence number).
import net from 'node:net';
import { DELIVERIES, ERRORS, FRAMES, LAST_RECEIVE_MS, OPEN, RESUMED } from './driver-layout.ts';
import type { SharedHistogram } from './histogram.ts';
import type { EventTimeline } from './timeline.ts';

export interface ClientContext {
  host: string;
  port: number;
  counters: Int32Array;
  latency: SharedHistogram;
  /** Publish stamp to the time in the event's id (when Redis sequenced it). */
  ingestLag: SharedHistogram;
  /** Wall-clock ms the LAST_RECEIVE_MS slot counts from. */
  epochMs: number;
  /** Highest sequence number the publisher will send (size of the per-client bitmap). */
  maxSeq: number;
  /** Per-event first, mean and last latency (bench/timeline.ts); absent: not recorded. */
  timeline?: EventTimeline;
}

const HEADER_END = '\r\n\r\n';
const FRAME_END = Buffer.from('\n\n');
const TS_KEY = Buffer.from('"ts":');
const ID_KEY = Buffer.from('"id":"');
const COMMA = 0x2c;
const QUOTE = 0x22;
const VALUE_KEY = Buffer.from('"value":');
const LF = 0x0a;
const EMPTY = Buffer.alloc(0);
/** What one read may fill; module state, so one per worker thread. */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

export class SseClient {
  /** seen[seq] = 1 once the event with that sequence number arrived (duplicates are counted, not kept). */
  readonly seen: Uint8Array;
  unique = 0;
  duplicates = 0;
  /**
   * Event frames whose event id was not greater than the previous one's (a replay overlap shown twice).
   * Only counted on single-board streams: ids of different boards come from different logs.
   */
  idRegressions = 0;
  lastIdMs = 0;
  lastIdSeq = 0;
  /** The `id:` of the last event frame: the Last-Event-ID a resume sends. */
  lastId: string | undefined;
  /** `event: reset` frames received (the server could not resume this client: a loss for the soak). */
  resets = 0;
  /** The server's last `retry:` (ms), for a caller that reconnects as a browser does; undefined until sent. */
  retryMs: number | undefined;
  /** Storm: sequence numbers above this, received after the drop, mean the client has resumed. */
  resumeAfterSeq = Number.POSITIVE_INFINITY;
  resumed = false;
  private socket: net.Socket | undefined;
  private wanted = false;
  private headers = '';
  private chunked = false;
  private chunkLeft = 0;
  private chunkState: 'size' | 'data' | 'crlf' = 'size';
  /** The chunk size line read so far: its hex digits' value, and whether a non-digit (CR, `;`) ended them. */
  private sizeValue = 0;
  private sizeEnded = false;
  private carry: Buffer = EMPTY;
  /** Receive time of the frames of the current read; frames in one read arrived together. */
  private now = 0;
  /** Measured event frames in the current read, and all event frames (warm-up included). */
  private frames = 0;
  private allFrames = 0;

  constructor(
    private readonly context: ClientContext,
    private readonly cookie: string | undefined,
    private readonly localAddress: string,
    private readonly onUnexpectedClose: (client: SseClient) => void,
  ) {
    this.seen = new Uint8Array(context.maxSeq + 1);
  }

  /** Opens the stream (with Last-Event-ID when resuming); resolves once the server answered 200. */
  connect(resume: boolean): Promise<void> {
    const { host, port, counters } = this.context;
    this.wanted = true;
    this.headers = '';
    this.chunkState = 'size';
    this.sizeValue = 0;
    this.sizeEnded = false;
    this.carry = EMPTY;
    return new Promise((resolve, reject) => {
      // Reads land in one buffer per thread, handed over synchronously (no Buffer or stream push per read):
      // everything kept past the call is copied (the carry, the header text, the last id).
      const socket = net.connect({
        host,
        port,
        localAddress: this.localAddress,
        onread: {
          buffer: READ_BUFFER,
          // true: keep reading (false would pause the socket).
          callback: (size: number) => {
            onData(READ_BUFFER.subarray(0, size));
            return true;
          },
        },
      });
      this.socket = socket;
      socket.setNoDelay(true);
      let settled = false;
      let opened = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        Atomics.add(counters, ERRORS, 1);
        socket.destroy();
        reject(error);
      };
      socket.on('connect', () => {
        const lines = [`GET /events HTTP/1.1`, `Host: ${host}:${port}`, 'Accept: text/event-stream'];
        if (this.cookie) lines.push(`Cookie: ${this.cookie}`);
        if (resume && this.lastId !== undefined) lines.push(`Last-Event-ID: ${this.lastId}`);
        socket.write(`${lines.join('\r\n')}${HEADER_END}`);
      });
      const onData = (chunk: Buffer) => {
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
        Atomics.add(counters, OPEN, 1);
        const rest = Buffer.from(this.headers.slice(end + HEADER_END.length), 'latin1');
        this.headers = '';
        resolve();
        if (rest.length > 0) this.onBody(rest);
      };
      socket.on('error', (error) => fail(error));
      socket.on('close', () => {
        if (!settled) fail(new Error('closed before the response headers'));
        if (opened) Atomics.sub(counters, OPEN, 1);
        // A dropped socket's close may come after the next connect() began: only the current one counts.
        if (opened && this.wanted && this.socket === socket) this.onUnexpectedClose(this);
      });
    });
  }

  /** Closes the stream on purpose (end of run or a storm drop). */
  drop(): void {
    this.wanted = false;
    this.socket?.destroy();
  }

  private onBody(chunk: Buffer): void {
    this.frames = 0;
    this.allFrames = 0;
    if (!this.chunked) this.onBytes(chunk, 0, chunk.length);
    else this.onChunked(chunk);
    if (this.allFrames > 0) Atomics.add(this.context.counters, FRAMES, this.allFrames);
    if (this.frames > 0) {
      // One update per read, not per frame: the threads share these slots.
      Atomics.add(this.context.counters, DELIVERIES, this.frames);
      Atomics.store(this.context.counters, LAST_RECEIVE_MS, Math.round(this.now - this.context.epochMs));
    }
  }

  /** Strips HTTP/1.1 chunked framing (size line, data, CRLF), passing the data ranges on without copying. */
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
        // The size line in hex, digit by digit (no string per chunk); it may be cut by the read.
        for (; position < chunk.length && chunk[position] !== LF; position += 1) {
          const digit = this.sizeEnded ? -1 : hexDigit(chunk[position]!);
          if (digit === -1) this.sizeEnded = true;
          else this.sizeValue = this.sizeValue * 16 + digit;
        }
        if (position === chunk.length) return;
        position += 1;
        this.chunkLeft = this.sizeValue;
        this.sizeValue = 0;
        this.sizeEnded = false;
        if (this.chunkLeft > 0) this.chunkState = 'data';
      }
    }
  }

  /** Splits bytes into SSE frames (blank-line separated); a frame cut by the read is kept for the next. */
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
    let lastIdAt = -1;
    while (end !== -1 && end < limit) {
      // Event frames start with `id:`; retry, comment and reset frames are not counted.
      if (data[start] === 0x69 && data[start + 1] === 0x64 && data[start + 2] === 0x3a) {
        this.onEvent(data, start, end);
        lastIdAt = start;
      } else if (data[start] === 0x65 || data[start] === 0x72) {
        this.onControlFrame(data.toString('latin1', start, end));
      }
      start = end + 2;
      end = data.indexOf(FRAME_END, start);
    }
    // The cursor text is copied once per read, from its last event frame.
    if (lastIdAt !== -1) {
      const from = data[lastIdAt + 3] === 0x20 ? lastIdAt + 4 : lastIdAt + 3;
      this.lastId = data.toString('latin1', from, data.indexOf(LF, from));
    }
    this.carry = start < limit ? Buffer.from(data.subarray(start, limit)) : EMPTY;
  }

  /** `event: reset` and `retry:` frames (rare: read as text). */
  private onControlFrame(frame: string): void {
    if (/^event: ?reset$/m.test(frame)) this.resets += 1;
    const retry = /^retry: ?(\d+)$/m.exec(frame);
    if (retry) this.retryMs = Number(retry[1]);
  }

  /**
   * One event frame, data[start, end): `id: <cursor>\n`, then the envelope's `"id":"<ms>-<seq>"`, `"ts":`
   * and `"value":`. Read in one pass in JS, without a native `indexOf` per field: this runs for every
   * frame of every client (replays included), on the same two cores as the server (docs/performance.md,
   * "The reconnect storm (2026-12-03)").
   */
  private onEvent(data: Buffer, start: number, end: number): void {
    const { latency, ingestLag } = this.context;
    // The id line: a comma in it means a cursor of several boards (ids of different logs).
    let position = start + 3;
    let cursorIsOneBoard = true;
    for (; position < end && data[position] !== LF; position += 1) {
      if (data[position] === COMMA) cursorIsOneBoard = false;
    }
    let idMs = -1;
    let idSeq = 0;
    let ts = -1;
    let seq = -1;
    // The first `"id":"`, `"ts":` and `"value":` after the id line (the same keys an indexOf would find).
    for (; position < end; position += 1) {
      if (data[position] !== QUOTE) continue;
      const key = data[position + 1];
      if (idMs === -1 && key === 0x69 && matchesAt(data, ID_KEY, position, end)) {
        position += ID_KEY.length;
        idMs = 0;
        for (; data[position] !== 0x2d && position < end; position += 1)
          idMs = idMs * 10 + data[position]! - 48;
        for (position += 1; data[position] !== QUOTE && position < end; position += 1) {
          idSeq = idSeq * 10 + data[position]! - 48;
        }
      } else if (ts === -1 && key === 0x74 && matchesAt(data, TS_KEY, position, end)) {
        ts = digitsAt(data, position + TS_KEY.length, end);
      } else if (seq === -1 && key === 0x76 && matchesAt(data, VALUE_KEY, position, end)) {
        seq = digitsAt(data, position + VALUE_KEY.length, end);
      }
      if (seq !== -1 && ts !== -1 && idMs !== -1) break;
    }
    if (idMs === -1) return;
    if (cursorIsOneBoard && (idMs < this.lastIdMs || (idMs === this.lastIdMs && idSeq <= this.lastIdSeq))) {
      this.idRegressions += 1;
    }
    this.lastIdMs = idMs;
    this.lastIdSeq = idSeq;
    this.allFrames += 1;
    // Warm-up events (value 0) only bring the server's code up to speed; they are not measured.
    if (seq === 0) return;
    this.frames += 1;
    latency.record((this.now - ts) * 1000);
    ingestLag.record((idMs - ts) * 1000);
    this.context.timeline?.record(seq, this.now - ts);
    if (seq > 0 && seq < this.seen.length) {
      if (this.seen[seq] === 1) this.duplicates += 1;
      else {
        this.seen[seq] = 1;
        this.unique += 1;
      }
      if (!this.resumed && seq > this.resumeAfterSeq) {
        this.resumed = true;
        Atomics.add(this.context.counters, RESUMED, 1);
      }
    }
  }
}

/** The value of a hex digit's byte, or -1. */
function hexDigit(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

/** Whether `key` is at data[at] and ends before `to`. */
function matchesAt(data: Buffer, key: Buffer, at: number, to: number): boolean {
  if (at + key.length > to) return false;
  for (let index = 0; index < key.length; index += 1) if (data[at + index] !== key[index]) return false;
  return true;
}

/** The integer whose digits start at data[from] (stopping at the first non-digit or at `to`). */
function digitsAt(data: Buffer, from: number, to: number): number {
  let value = 0;
  for (let index = from; index < to; index += 1) {
    const digit = data[index]! - 48;
    if (digit < 0 || digit > 9) break;
    value = value * 10 + digit;
  }
  return value;
}
