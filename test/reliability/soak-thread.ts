// A client thread of the soak (docs/reliability.md, "Soak"): opens its share of the streams and records
// into the counters and delivery-latency histogram all threads share (soak-client.ts, SLOT). Commands
// come as messages, one answer per command.
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHistogram } from '../../bench/histogram.ts';
import { LATENCY_OFFSET, SoakClient, type SoakClientContext } from './soak-client.ts';

export interface SoakThreadData {
  buffer: SharedArrayBuffer;
  host: string;
  port: number;
}

export type SoakThreadCommand =
  | { type: 'open'; cookie: string; localAddresses: string[]; concurrency: number }
  | { type: 'report'; published: number }
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
  /** Clients whose last value is below `published` (still behind when asked). */
  behind: number;
  minLastValue: number;
  /** Why connection attempts failed, by message (each client's last failure). */
  connectErrors: Record<string, number>;
}

export interface SoakThreadReply {
  failures: number;
  firstError?: string;
  totals?: SoakTotals;
}

const OPEN_ATTEMPTS = 5;
const data = workerData as SoakThreadData;
const counters = new Int32Array(data.buffer);
const context: SoakClientContext = {
  host: data.host,
  port: data.port,
  counters,
  latency: new SharedHistogram(counters, LATENCY_OFFSET),
};
const clients: SoakClient[] = [];

async function openAll(fresh: SoakClient[], concurrency: number): Promise<SoakThreadReply> {
  let next = 0;
  let failures = 0;
  let firstError: string | undefined;
  const lane = async () => {
    while (next < fresh.length) {
      const client = fresh[next]!;
      next += 1;
      for (let attempt = 1; ; attempt += 1) {
        try {
          await client.connect();
          break;
        } catch (error) {
          if (attempt < OPEN_ATTEMPTS) {
            await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
            continue;
          }
          failures += 1;
          firstError ??= String(error);
          client.close();
          break;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane));
  return firstError === undefined ? { failures } : { failures, firstError };
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
    minLastValue: Number.POSITIVE_INFINITY,
    connectErrors: {},
  };
  for (const client of clients) {
    const lost = client.gaps + Math.max(0, published - client.lastValue);
    result.lost += lost;
    if (lost > 0) result.clientsWithLoss += 1;
    result.maxLostPerClient = Math.max(result.maxLostPerClient, lost);
    result.duplicates += client.duplicates;
    if (client.duplicates > 0) result.clientsWithDuplicates += 1;
    result.idRegressions += client.idRegressions;
    result.resets += client.resets;
    if (client.lastValue < published) result.behind += 1;
    result.minLastValue = Math.min(result.minLastValue, client.lastValue);
    if (client.lastError !== undefined) {
      result.connectErrors[client.lastError] = (result.connectErrors[client.lastError] ?? 0) + 1;
    }
  }
  return result;
}

async function handle(command: SoakThreadCommand): Promise<SoakThreadReply> {
  switch (command.type) {
    case 'open': {
      const fresh = command.localAddresses.map((address) => new SoakClient(context, command.cookie, address));
      clients.push(...fresh);
      return openAll(fresh, command.concurrency);
    }
    case 'report':
      return { failures: 0, totals: totals(command.published) };
    case 'close':
      for (const client of clients) client.close();
      return { failures: 0 };
  }
}

parentPort!.postMessage({ type: 'ready' });
parentPort!.on('message', (command: SoakThreadCommand) => {
  void handle(command).then((reply) => parentPort!.postMessage(reply));
});
