// A driver process (forked by driver-pool.ts): spreads its SSE clients over worker threads that share
// one SharedArrayBuffer of counters and histograms. The process exists so that a scenario can use more
// sockets than one process may open (20,000 files here).
import { Worker } from 'node:worker_threads';
import { LAG_OFFSET, LATENCY_OFFSET, SLOT_COUNT } from './driver-layout.ts';
import { SharedHistogram } from './histogram.ts';
import { EventTimeline } from './timeline.ts';
import type { ClientSpec, ClientTotals, ThreadCommand, ThreadData, ThreadReply } from './driver-thread.ts';

export type DriverCommand =
  | { type: 'start'; host: string; port: number; epochMs: number; maxSeq: number; threads: number }
  | { type: 'open' | 'warm'; clients: ClientSpec[]; concurrency: number }
  | { type: 'storm'; concurrency: number }
  | { type: 'report'; firstSeq: number; lastSeq: number }
  | { type: 'stats' }
  | { type: 'timeline' }
  | { type: 'close' };

export interface DriverStats {
  counters: number[];
  latency: number[];
  ingestLag: number[];
}

export interface DriverResult {
  failures: number;
  firstError?: string;
  totals?: ClientTotals;
  stats?: DriverStats;
  /** The process's per-event timeline slots (bench/timeline.ts). */
  timeline?: number[];
}

const THREAD_ENTRY = new URL('./driver-thread.ts', import.meta.url).href;
let threads: Worker[] = [];
let counters: Int32Array = new Int32Array(0);
let timeline: EventTimeline | undefined;

/** Worker threads do not inherit tsx's loader from `--import`, so each one registers it first. */
function startThread(data: ThreadData): Worker {
  const source = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(THREAD_ENTRY)}); });`;
  return new Worker(source, { eval: true, workerData: data });
}

/** One command, one reply; its listeners go with the reply (a run sends a thread a dozen commands). */
function ask(thread: Worker, command: ThreadCommand): Promise<ThreadReply> {
  return new Promise((resolve, reject) => {
    const onReply = (reply: ThreadReply) => {
      thread.off('error', onError);
      resolve(reply);
    };
    const onError = (error: Error) => {
      thread.off('message', onReply);
      reject(error);
    };
    thread.once('message', onReply);
    thread.once('error', onError);
    thread.postMessage(command);
  });
}

function addTotals(all: ClientTotals[]): ClientTotals {
  return all.reduce((sum, part) => ({
    clients: sum.clients + part.clients,
    lost: sum.lost + part.lost,
    clientsWithLoss: sum.clientsWithLoss + part.clientsWithLoss,
    maxLostPerClient: Math.max(sum.maxLostPerClient, part.maxLostPerClient),
    duplicates: sum.duplicates + part.duplicates,
    idRegressions: sum.idRegressions + part.idRegressions,
    unique: sum.unique + part.unique,
  }));
}

async function onEveryThread(commands: ThreadCommand[]): Promise<DriverResult> {
  const replies = await Promise.all(threads.map((thread, index) => ask(thread, commands[index]!)));
  const firstError = replies.find((reply) => reply.firstError)?.firstError;
  const totals = replies.flatMap((reply) => (reply.totals ? [reply.totals] : []));
  return {
    failures: replies.reduce((sum, reply) => sum + reply.failures, 0),
    ...(firstError === undefined ? {} : { firstError }),
    ...(totals.length > 0 ? { totals: addTotals(totals) } : {}),
  };
}

async function handle(command: DriverCommand): Promise<DriverResult> {
  switch (command.type) {
    case 'start': {
      const buffer = new SharedArrayBuffer(SLOT_COUNT * Int32Array.BYTES_PER_ELEMENT);
      counters = new Int32Array(buffer);
      timeline = EventTimeline.create(command.maxSeq);
      const data: ThreadData = {
        buffer,
        ...command,
        timelineBuffer: timeline.slots.buffer as SharedArrayBuffer,
      };
      threads = Array.from({ length: command.threads }, () => startThread(data));
      // Setup time must not include loading the client code: wait until every thread is listening.
      await Promise.all(
        threads.map(
          (thread) =>
            new Promise((resolve, reject) => {
              thread.once('message', resolve);
              thread.once('error', reject);
            }),
        ),
      );
      return { failures: 0 };
    }
    case 'open':
    case 'warm': {
      const shares: ClientSpec[][] = threads.map(() => []);
      command.clients.forEach((spec, index) => shares[index % threads.length]!.push(spec));
      const lanes = Math.max(1, Math.ceil(command.concurrency / threads.length));
      const { type } = command;
      return onEveryThread(shares.map((clients) => ({ type, clients, concurrency: lanes })));
    }
    case 'storm': {
      const lanes = Math.max(1, Math.ceil(command.concurrency / threads.length));
      return onEveryThread(threads.map(() => ({ type: 'storm', concurrency: lanes })));
    }
    case 'report':
      return onEveryThread(threads.map(() => command));
    case 'stats':
      return {
        failures: 0,
        stats: {
          counters: Array.from(counters.subarray(0, LATENCY_OFFSET)),
          latency: new SharedHistogram(counters, LATENCY_OFFSET).snapshot(),
          ingestLag: new SharedHistogram(counters, LAG_OFFSET).snapshot(),
        },
      };
    case 'timeline':
      return { failures: 0, timeline: timeline?.snapshot() ?? [] };
    case 'close': {
      if (threads.length > 0) await onEveryThread(threads.map(() => command));
      await Promise.all(threads.map((thread) => thread.terminate()));
      threads = [];
      return { failures: 0 };
    }
  }
}

process.on('message', (message: { id: number; command: DriverCommand }) => {
  handle(message.command).then(
    (result) => {
      process.send!({ id: message.id, result });
      if (message.command.type === 'close') process.disconnect();
    },
    (error: unknown) => process.send!({ id: message.id, error: String(error) }),
  );
});
// The bench's own exit (even SIGKILL) closes the IPC channel: never outlive it.
process.on('disconnect', () => process.exit(0));
