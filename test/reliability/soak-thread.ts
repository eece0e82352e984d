// A client thread of the soak (docs/reliability.md, "Soak"): opens its share of the streams with the
// bench's raw-socket client (bench/sse-client.ts) and records into the counters and histograms all
// threads share (bench/driver-layout.ts). A stream the server ends comes back as a browser's does: after
// the server's `retry:`, with the last frame `id:` sent back verbatim as Last-Event-ID (an opaque cursor,
// e.g. `main:<id>`). Commands come as messages, one answer per command.
import { parentPort, workerData } from 'node:worker_threads';
import { LAG_OFFSET, LATENCY_OFFSET, RECONNECTS } from '../../bench/driver-layout.ts';
import { SharedHistogram } from '../../bench/histogram.ts';
import { SseClient, type ClientContext } from '../../bench/sse-client.ts';

export interface SoakThreadData {
  buffer: SharedArrayBuffer;
  host: string;
  port: number;
  /** Highest `value` the publisher will send (each client keeps a bitmap of the values it saw). */
  maxSeq: number;
  /** Wall-clock ms the bench's LAST_RECEIVE_MS slot counts from. */
  epochMs: number;
}

export type SoakThreadCommand =
  | { type: 'open'; cookie: string; localAddresses: string[]; concurrency: number }
  | { type: 'report'; published: number }
  /** How many clients miss a value in (from, published]: still catching up after a reload. */
  | { type: 'behind'; from: number; published: number }
  | { type: 'close' };

/** What the thread's clients saw, summed; `lost` counts values 1..published a client never received. */
export interface SoakTotals {
  clients: number;
  lost: number;
  clientsWithLoss: number;
  maxLostPerClient: number;
  duplicates: number;
  clientsWithDuplicates: number;
  idRegressions: number;
  resets: number;
  /** Clients that have not received every value up to `published` yet (still catching up when asked). */
  behind: number;
  /** The fewest values 1..published any client received. */
  minReceived: number;
  /** Why connection attempts failed, by message (each client's last failure). */
  connectErrors: Record<string, number>;
}

export interface SoakThreadReply {
  failures: number;
  behind?: number;
  firstError?: string;
  totals?: SoakTotals;
}

const OPEN_ATTEMPTS = 5;
/** Before the server has sent its `retry:` (or after a failed attempt), as EventSource's default. */
const DEFAULT_RETRY_MS = 1000;
const data = workerData as SoakThreadData;
const counters = new Int32Array(data.buffer);
const context: ClientContext = {
  host: data.host,
  port: data.port,
  counters,
  latency: new SharedHistogram(counters, LATENCY_OFFSET),
  ingestLag: new SharedHistogram(counters, LAG_OFFSET),
  epochMs: data.epochMs,
  maxSeq: data.maxSeq,
};
const clients: SseClient[] = [];
/** Each client's last connection failure, for the report. */
const lastErrors = new Map<SseClient, string>();
let closing = false;

/** Reconnects a stream the server ended, as a browser does, until it is open again. */
function reconnect(client: SseClient, delayMs = client.retryMs ?? DEFAULT_RETRY_MS): void {
  setTimeout(() => {
    if (closing) return;
    client.connect(true).catch((error: unknown) => {
      lastErrors.set(client, error instanceof Error ? error.message : String(error));
      reconnect(client, DEFAULT_RETRY_MS);
    });
  }, delayMs);
}

function onServerClose(client: SseClient): void {
  Atomics.add(counters, RECONNECTS, 1);
  reconnect(client);
}

async function openAll(fresh: SseClient[], concurrency: number): Promise<SoakThreadReply> {
  let next = 0;
  let failures = 0;
  let firstError: string | undefined;
  const lane = async () => {
    while (next < fresh.length) {
      const client = fresh[next]!;
      next += 1;
      for (let attempt = 1; ; attempt += 1) {
        try {
          await client.connect(false);
          break;
        } catch (error) {
          lastErrors.set(client, error instanceof Error ? error.message : String(error));
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

/** Values 1..published the client saw (its bitmap; warm-up value 0 is not counted). */
function received(client: SseClient, published: number): number {
  let count = 0;
  const last = Math.min(published, client.seen.length - 1);
  for (let value = 1; value <= last; value += 1) count += client.seen[value]!;
  return count;
}

/** Clients missing a value in (from, published]: cheaper than the totals, for polling during a run. */
function behindSince(from: number, published: number): number {
  let behind = 0;
  for (const client of clients) {
    const last = Math.min(published, client.seen.length - 1);
    for (let value = Math.max(1, from + 1); value <= last; value += 1) {
      if (!client.seen[value]) {
        behind += 1;
        break;
      }
    }
  }
  return behind;
}

function totals(published: number): SoakTotals {
  const result: SoakTotals = {
    clients: clients.length,
    lost: 0,
    clientsWithLoss: 0,
    maxLostPerClient: 0,
    duplicates: 0,
    clientsWithDuplicates: 0,
    idRegressions: 0,
    resets: 0,
    behind: 0,
    minReceived: Number.POSITIVE_INFINITY,
    connectErrors: {},
  };
  for (const client of clients) {
    const got = received(client, published);
    const lost = published - got;
    result.lost += lost;
    if (lost > 0) {
      result.clientsWithLoss += 1;
      result.behind += 1;
    }
    result.maxLostPerClient = Math.max(result.maxLostPerClient, lost);
    result.duplicates += client.duplicates;
    if (client.duplicates > 0) result.clientsWithDuplicates += 1;
    result.idRegressions += client.idRegressions;
    result.resets += client.resets;
    result.minReceived = Math.min(result.minReceived, got);
  }
  for (const message of lastErrors.values()) {
    result.connectErrors[message] = (result.connectErrors[message] ?? 0) + 1;
  }
  return result;
}

async function handle(command: SoakThreadCommand): Promise<SoakThreadReply> {
  switch (command.type) {
    case 'open': {
      const fresh = command.localAddresses.map(
        (address) => new SseClient(context, command.cookie, address, onServerClose),
      );
      clients.push(...fresh);
      return openAll(fresh, command.concurrency);
    }
    case 'report':
      return { failures: 0, totals: totals(command.published) };
    case 'behind':
      return { failures: 0, behind: behindSince(command.from, command.published) };
    case 'close':
      closing = true;
      for (const client of clients) client.drop();
      return { failures: 0 };
  }
}

parentPort!.postMessage({ type: 'ready' });
parentPort!.on('message', (command: SoakThreadCommand) => {
  void handle(command).then((reply) => parentPort!.postMessage(reply));
});
