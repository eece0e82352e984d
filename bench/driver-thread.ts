// One client thread of a driver process: opens its share of the SSE streams and records into the
// process's shared counters and histograms (driver-layout.ts). Commands come as messages; answers are
// one message per command, never per event.
import { parentPort, workerData } from 'node:worker_threads';
import { LAG_OFFSET, LATENCY_OFFSET, RECONNECTS } from './driver-layout.ts';
import { SharedHistogram } from './histogram.ts';
import { SseClient, type ClientContext } from './sse-client.ts';
import { EventTimeline } from './timeline.ts';

export interface ThreadData {
  buffer: SharedArrayBuffer;
  host: string;
  port: number;
  epochMs: number;
  maxSeq: number;
  /** The process's per-event timeline (bench/timeline.ts). */
  timelineBuffer?: SharedArrayBuffer;
}

export interface ClientSpec {
  cookie?: string;
  localAddress: string;
}

export type ThreadCommand =
  | { type: 'open'; clients: ClientSpec[]; concurrency: number }
  | { type: 'warm'; clients: ClientSpec[]; concurrency: number }
  | { type: 'storm'; concurrency: number }
  | { type: 'report'; firstSeq: number; lastSeq: number }
  | { type: 'close' };

export interface ClientTotals {
  clients: number;
  /** Events of [firstSeq, lastSeq] some client never received, summed over clients. */
  lost: number;
  clientsWithLoss: number;
  maxLostPerClient: number;
  duplicates: number;
  idRegressions: number;
  unique: number;
}

export interface ThreadReply {
  type: 'done';
  failures: number;
  firstError?: string;
  totals?: ClientTotals;
}

const RECONNECT_DELAY_MS = 250;
const OPEN_ATTEMPTS = 3;

const data = workerData as ThreadData;
const counters = new Int32Array(data.buffer);
const context: ClientContext = {
  host: data.host,
  port: data.port,
  counters,
  latency: new SharedHistogram(counters, LATENCY_OFFSET),
  ingestLag: new SharedHistogram(counters, LAG_OFFSET),
  epochMs: data.epochMs,
  maxSeq: data.maxSeq,
  ...(data.timelineBuffer === undefined
    ? {}
    : { timeline: new EventTimeline(new Int32Array(data.timelineBuffer)) }),
};
const clients: SseClient[] = [];

/** What a browser's EventSource does when the server closes the stream: come back with Last-Event-ID. */
function reconnectLater(client: SseClient): void {
  Atomics.add(counters, RECONNECTS, 1);
  setTimeout(() => {
    client.connect(true).catch(() => reconnectLater(client));
  }, RECONNECT_DELAY_MS);
}

async function openAll(
  targets: SseClient[],
  resume: boolean,
  concurrency: number,
): Promise<{ failures: number; firstError?: string }> {
  let next = 0;
  let failures = 0;
  let firstError: string | undefined;
  const lane = async () => {
    while (next < targets.length) {
      const client = targets[next]!;
      next += 1;
      for (let attempt = 1; ; attempt += 1) {
        try {
          await client.connect(resume);
          break;
        } catch (error) {
          if (attempt < OPEN_ATTEMPTS) {
            await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
            continue;
          }
          failures += 1;
          firstError ??= String(error);
          client.drop();
          break;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane));
  return firstError === undefined ? { failures } : { failures, firstError };
}

function totals(firstSeq: number, lastSeq: number): ClientTotals {
  const result: ClientTotals = {
    clients: clients.length,
    lost: 0,
    clientsWithLoss: 0,
    maxLostPerClient: 0,
    duplicates: 0,
    idRegressions: 0,
    unique: 0,
  };
  for (const client of clients) {
    let lost = 0;
    for (let seq = firstSeq; seq <= lastSeq; seq += 1) if (client.seen[seq] !== 1) lost += 1;
    result.lost += lost;
    if (lost > 0) result.clientsWithLoss += 1;
    result.maxLostPerClient = Math.max(result.maxLostPerClient, lost);
    result.duplicates += client.duplicates;
    result.idRegressions += client.idRegressions;
    result.unique += client.unique;
  }
  return result;
}

async function handle(command: ThreadCommand): Promise<ThreadReply> {
  switch (command.type) {
    case 'open': {
      const fresh = command.clients.map(
        (spec) => new SseClient(context, spec.cookie, spec.localAddress, reconnectLater),
      );
      clients.push(...fresh);
      return { type: 'done', ...(await openAll(fresh, false, command.concurrency)) };
    }
    case 'warm': {
      // Streams opened and closed again, not kept: they bring this thread's client code up to speed.
      const passing = command.clients.map(
        (spec) => new SseClient(context, spec.cookie, spec.localAddress, () => undefined),
      );
      const outcome = await openAll(passing, false, command.concurrency);
      for (const client of passing) client.drop();
      return { type: 'done', ...outcome };
    }
    case 'storm': {
      let newest = 0;
      for (const client of clients) {
        for (let seq = client.seen.length - 1; seq > newest; seq -= 1) {
          if (client.seen[seq] === 1) {
            newest = seq;
            break;
          }
        }
      }
      for (const client of clients) {
        client.resumeAfterSeq = newest;
        client.drop();
      }
      return { type: 'done', ...(await openAll(clients, true, command.concurrency)) };
    }
    case 'report':
      return { type: 'done', failures: 0, totals: totals(command.firstSeq, command.lastSeq) };
    case 'close':
      for (const client of clients) client.drop();
      return { type: 'done', failures: 0 };
  }
}

parentPort!.postMessage({ type: 'ready' });
parentPort!.on('message', (command: ThreadCommand) => {
  void handle(command).then((reply) => parentPort!.postMessage(reply));
});
