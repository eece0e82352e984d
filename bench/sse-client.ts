// A cheap SSE client on a raw socket (not EventSource: thousands of them share one thread). It speaks
// just enough HTTP/1.1 (status line, chunked or close-delimited body) and SSE (frames split on a blank
// line, the `id:` field, and the bench payload's `"ts":` stamp and `"value":` sequence number).
import net from 'node:net';
import { DELIVERIES, ERRORS, LAST_RECEIVE_MS, OPEN, RESUMED } from './driver-layout.ts';
import type { SharedHistogram } from './histogram.ts';

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
}

const HEADER_END = '\r\n\r\n';

export class SseClient {
  /** seen[seq] = 1 once the event with that sequence number arrived (duplicates are counted, not kept). */
  readonly seen: Uint8Array;
  unique = 0;
  duplicates = 0;
  /** Event frames whose id was not greater than the previous one's (a replay overlap shown twice). */
  idRegressions = 0;
  lastId: string | undefined;
  lastIdMs = 0;
  lastIdSeq = 0;
  /** Storm: sequence numbers above this, received after the drop, mean the client has resumed. */
  resumeAfterSeq = Number.POSITIVE_INFINITY;
  resumed = false;
  private socket: net.Socket | undefined;
  private wanted = false;
  private headers = '';
  private chunked = false;
  private chunkLeft = 0;
  private chunkState: 'size' | 'data' | 'crlf' = 'size';
  private sizeText = '';
  private carry = '';

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
    this.sizeText = '';
    this.carry = '';
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, localAddress: this.localAddress });
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
        if (resume && this.lastId) lines.push(`Last-Event-ID: ${this.lastId}`);
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
        Atomics.add(counters, OPEN, 1);
        const rest = Buffer.from(this.headers.slice(end + HEADER_END.length), 'latin1');
        this.headers = '';
        resolve();
        if (rest.length > 0) this.onBody(rest);
      });
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
    if (!this.chunked) {
      this.onText(chunk.toString('latin1'));
      return;
    }
    let position = 0;
    while (position < chunk.length) {
      if (this.chunkState === 'data') {
        const take = Math.min(this.chunkLeft, chunk.length - position);
        this.onText(chunk.toString('latin1', position, position + take));
        position += take;
        this.chunkLeft -= take;
        if (this.chunkLeft === 0) this.chunkState = 'crlf';
      } else if (this.chunkState === 'crlf') {
        if (chunk[position] === 0x0a) this.chunkState = 'size';
        position += 1;
      } else {
        const newline = chunk.indexOf(0x0a, position);
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

  private onText(text: string): void {
    const data = this.carry.length > 0 ? this.carry + text : text;
    let start = 0;
    let end = data.indexOf('\n\n', start);
    if (end === -1) {
      this.carry = data;
      return;
    }
    const now = performance.timeOrigin + performance.now();
    while (end !== -1) {
      if (data.startsWith('id: ', start)) this.onEvent(data, start, end, now);
      start = end + 2;
      end = data.indexOf('\n\n', start);
    }
    this.carry = data.slice(start);
  }

  private onEvent(data: string, start: number, end: number, now: number): void {
    const { counters, latency, ingestLag, epochMs } = this.context;
    const idEnd = data.indexOf('\n', start);
    const id = data.slice(start + 4, idEnd);
    const dash = id.indexOf('-');
    const idMs = Number(id.slice(0, dash));
    const idSeq = Number(id.slice(dash + 1));
    if (idMs < this.lastIdMs || (idMs === this.lastIdMs && idSeq <= this.lastIdSeq)) this.idRegressions += 1;
    this.lastId = id;
    this.lastIdMs = idMs;
    this.lastIdSeq = idSeq;
    const ts = readNumber(data, '"ts":', idEnd, end);
    const seq = readNumber(data, '"value":', idEnd, end);
    // Warm-up events (value 0) only bring the server's code up to speed; they are not measured.
    if (seq === 0) return;
    Atomics.add(counters, DELIVERIES, 1);
    Atomics.store(counters, LAST_RECEIVE_MS, Math.round(now - epochMs));
    latency.record((now - ts) * 1000);
    ingestLag.record((idMs - ts) * 1000);
    if (seq >= 0 && seq < this.seen.length) {
      if (this.seen[seq] === 1) this.duplicates += 1;
      else {
        this.seen[seq] = 1;
        this.unique += 1;
      }
      if (!this.resumed && seq > this.resumeAfterSeq) {
        this.resumed = true;
        Atomics.add(counters, RESUMED, 1);
      }
    }
  }
}

/** The integer after `key` inside data[from, to), or -1. */
function readNumber(data: string, key: string, from: number, to: number): number {
  const at = data.indexOf(key, from);
  if (at === -1 || at > to) return -1;
  let value = 0;
  for (let index = at + key.length; index < to; index += 1) {
    const digit = data.charCodeAt(index) - 48;
    if (digit < 0 || digit > 9) break;
    value = value * 10 + digit;
  }
  return value;
}
