// `npm run soak:storms` (docs/reliability.md, "Soak: memory after a reconnect storm"): what a worker's
// memory does when every stream drops and comes back at once with a Last-Event-ID some seconds old, as
// after a `pm2 reload`, repeated several times onto the same worker. The soak replaces its workers at
// every reload, so it cannot tell a leak (each storm adds) from memory kept after the first storm (flat
// across the next ones). This can: one PM2 worker (the real ecosystem.config.cjs), the bench's raw-socket
// clients (bench/sse-client.ts), and a breakdown of the worker's memory after each phase: RSS, V8 heap,
// external (Buffers) and, from /proc, anonymous memory.
//
// Options (environment): STORM_STREAMS (1000), STORM_RATE (100 events/s), STORM_GAP_SECONDS (8: how long
// the streams stay away, so each resume replays rate x gap events), STORM_COUNT (4), STORM_SETTLE_SECONDS
// (30), STORM_ENV (extra worker variables, `A=1,B=2`, e.g. `MALLOC_ARENA_MAX=2`), STORM_SNAPSHOTS (a
// folder: a heap snapshot of the worker before the storms and after each, see fullGc).
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { createClient } from 'redis';
import { HISTOGRAM_SLOTS, SharedHistogram } from '../../bench/histogram.ts';
import { LAG_OFFSET, LATENCY_OFFSET, OPEN, SLOT_COUNT } from '../../bench/driver-layout.ts';
import { SseClient, type ClientContext } from '../../bench/sse-client.ts';
import { installCleanup } from '../../bench/processes.ts';
import { createPublisher } from '../../shared/publisher.ts';
import { uniquePrefix } from '../helpers/app.ts';
import { login } from '../helpers/auth.ts';
import { startTestRedis } from '../helpers/redis-server.ts';
import { sleep } from '../helpers/sse-client.ts';
import { startPm2Cluster } from '../ops/pm2-cluster.ts';
import { sampleWorkers, SOAK_METRICS_TOKEN, type WorkerSample } from './soak-probes.ts';

const env = process.env;
const STREAMS = Number(env.STORM_STREAMS ?? 1000);
const RATE = Number(env.STORM_RATE ?? 100);
const GAP_S = Number(env.STORM_GAP_SECONDS ?? 8);
const STORMS = Number(env.STORM_COUNT ?? 4);
const SETTLE_S = Number(env.STORM_SETTLE_SECONDS ?? 30);
const SNAPSHOT_DIR = env.STORM_SNAPSHOTS;
const EXTRA_ENV = Object.fromEntries(
  (env.STORM_ENV ?? '')
    .split(',')
    .filter((pair) => pair.includes('='))
    .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
);

const log = (text: string) => process.stdout.write(`storms: ${text}\n`);

/** Anonymous resident memory of a process (heap, malloc arenas, stacks), MB, from /proc. */
async function anonMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const match = /RssAnon:\s+(\d+) kB/.exec(status);
  return match ? Math.round(Number(match[1]) / 1000) : NaN;
}

/**
 * With STORM_SNAPSHOTS set (the worker then runs with --heapsnapshot-signal=SIGUSR2 and
 * --diagnostic-dir), writes a heap snapshot, which collects garbage first: the heap used after it is what
 * is really alive. Waits until the snapshot file stops growing.
 */
async function fullGc(pid: number): Promise<void> {
  if (!SNAPSHOT_DIR) return;
  const before = new Set(await readdir(SNAPSHOT_DIR));
  process.kill(pid, 'SIGUSR2');
  let size = -1;
  for (let waited = 0; waited < 60_000; waited += 1000) {
    await sleep(1000);
    const fresh = (await readdir(SNAPSHOT_DIR)).filter((name) => !before.has(name));
    if (fresh.length === 0) continue;
    const now = (await stat(path.join(SNAPSHOT_DIR, fresh[0]!))).size;
    if (now === size && now > 0) {
      log(`heap snapshot ${path.join(SNAPSHOT_DIR, fresh[0]!)} (${Math.round(now / 1e6)} MB)`);
      return;
    }
    size = now;
  }
}

async function main(): Promise<void> {
  installCleanup();
  if (SNAPSHOT_DIR) await mkdir(SNAPSHOT_DIR, { recursive: true });
  const redis = await startTestRedis();
  const prefix = uniquePrefix();
  const client = createClient({ url: redis.url });
  await client.connect();
  const cluster = await startPm2Cluster({
    redisUrl: redis.url,
    prefix,
    instances: 1,
    env: {
      METRICS_TOKEN: SOAK_METRICS_TOKEN,
      MAX_STREAMS_PER_SESSION: String(STREAMS + 100),
      MAX_CONNECTIONS_PER_IP: String(STREAMS + 100),
      HISTORY_MAX: String(Math.max(10_000, RATE * 120)),
      ...(SNAPSHOT_DIR
        ? { NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${SNAPSHOT_DIR}` }
        : {}),
      ...EXTRA_ENV,
    },
  });
  const clients: SseClient[] = [];
  let publishing = true;
  let reconnects = 0;
  let failedPublishes = 0;
  try {
    const [worker] = await cluster.workers();
    const { headers } = await login(cluster.url, { redisUrl: redis.url, prefix });
    const counters = new Int32Array(new SharedArrayBuffer(SLOT_COUNT * Int32Array.BYTES_PER_ELEMENT));
    const maxSeq = Math.ceil(RATE * (STORMS * (GAP_S + SETTLE_S) + 60)) + 1000;
    const context: ClientContext = {
      host: '127.0.0.1',
      port: cluster.port,
      counters,
      latency: new SharedHistogram(counters, LATENCY_OFFSET),
      ingestLag: new SharedHistogram(counters, LAG_OFFSET),
      epochMs: Date.now(),
      maxSeq,
    };
    void HISTOGRAM_SLOTS;
    for (let index = 0; index < STREAMS; index += 1) {
      // A stream the server ends (closed as slow while the storm's replays queue up) comes back, as a
      // browser's would, with its Last-Event-ID.
      const reconnect = (one: SseClient) => {
        reconnects += 1;
        setTimeout(() => void one.connect(true).catch(() => reconnect(one)), 500);
      };
      clients.push(new SseClient(context, headers.Cookie, `127.0.0.${1 + (index % 4)}`, reconnect));
    }
    const openAll = async (resume: boolean) => {
      let next = 0;
      const lane = async () => {
        while (next < clients.length) {
          const one = clients[next]!;
          next += 1;
          for (let attempt = 1; ; attempt += 1) {
            try {
              await one.connect(resume);
              break;
            } catch (error) {
              if (attempt >= 5) throw error;
              await sleep(200 * attempt);
            }
          }
        }
      };
      // A storm: every stream at once (as after a reload); the first open: 25 at a time.
      await Promise.all(Array.from({ length: resume ? clients.length : 25 }, lane));
    };
    log(`${STREAMS} streams, ${RATE} events/s, ${STORMS} storms of ${GAP_S} s away, ${SETTLE_S} s to settle`);
    log(`worker env: ${JSON.stringify(EXTRA_ENV)}`);
    await openAll(false);

    const publisher = createPublisher(client, { prefix });
    let value = 0;
    const publishing$ = (async () => {
      const started = performance.now();
      while (publishing) {
        const due = Math.floor(((performance.now() - started) / 1000) * RATE);
        while (value < due) {
          value += 1;
          publisher
            .publish({ type: 'metric', name: 'bench.value', value, unit: 'n', ts: Date.now() })
            .catch(() => (failedPublishes += 1));
        }
        await sleep(5);
      }
    })();

    const rows: (WorkerSample & { phase: string; anonMb: number; open: number })[] = [];
    const sample = async (phase: string) => {
      const [one] = await sampleWorkers(cluster.url).catch(() => [] as WorkerSample[]);
      if (!one) return;
      const row = { phase, ...one, anonMb: await anonMb(worker!.pid), open: Atomics.load(counters, OPEN) };
      rows.push(row);
      log(
        `${phase.padEnd(18)} RSS ${row.rssMb} MB (anon ${row.anonMb}), heap ${row.heapUsedMb}/` +
          `${row.heapTotalMb} MB, external ${row.externalMb} MB, lag p99 ${row.lagP99Ms} ms, open ${row.open}, ` +
          `reconnects ${reconnects}`,
      );
    };
    for (let second = 0; second < SETTLE_S; second += 10) {
      await sleep(10_000);
      await sample(`steady ${second + 10}s`);
    }
    await fullGc(worker!.pid);
    await sample('steady, after GC');
    for (let storm = 1; storm <= STORMS; storm += 1) {
      for (const one of clients) one.drop();
      await sleep(GAP_S * 1000);
      await sample(`storm ${storm}: away`);
      const started = performance.now();
      await openAll(true);
      log(`storm ${storm}: ${STREAMS} streams reopened in ${Math.round(performance.now() - started)} ms`);
      // Caught up: every stream has the value published when it reopened (its replay has ended).
      const mark = Math.min(value, maxSeq);
      const caughtUp = () => clients.every((one) => one.seen[mark] === 1);
      for (const end = performance.now() + 120_000; !caughtUp() && performance.now() < end;) await sleep(250);
      log(
        `storm ${storm}: ${caughtUp() ? 'every stream caught up' : 'NOT every stream caught up'} ` +
          `${Math.round(performance.now() - started)} ms after the reopen began`,
      );
      for (let second = 0; second < SETTLE_S; second += 5) {
        await sleep(5000);
        await sample(`storm ${storm}: +${second + 5}s`);
        // What is alive at the peak of the first storm (the snapshot collects garbage first).
        if (storm === 1 && second === 0 && env.STORM_PEAK_SNAPSHOT === '1') await fullGc(worker!.pid);
      }
      await fullGc(worker!.pid);
      await sample(`storm ${storm}: after GC`);
    }
    publishing = false;
    await publishing$;
    // Every stream must have every value (1..published) once: the storms lose nothing.
    await sleep(3000);
    const counted = Math.min(value, maxSeq);
    const missing = clients.map((one) => {
      let got = 0;
      for (let seq = 1; seq <= counted; seq += 1) got += one.seen[seq]!;
      return counted - got;
    });
    const duplicates = clients.reduce((sum, one) => sum + one.duplicates, 0);
    const resets = clients.reduce((sum, one) => sum + one.resets, 0);
    log(
      `published ${value} (${failedPublishes} failed); of values 1..${counted}: missing ` +
        `${missing.reduce((a, b) => a + b, 0)} (on ${missing.filter((count) => count > 0).length} streams, ` +
        `at most ${Math.max(...missing)}), duplicates ${duplicates}, resets ${resets}, ` +
        `reconnects after a server close ${reconnects}`,
    );
    const settled = rows.filter(
      (row) => row.phase.endsWith(`+${SETTLE_S}s`) || row.phase.startsWith('steady'),
    );
    log(`settled RSS per phase: ${settled.map((row) => `${row.phase} ${row.rssMb}`).join(', ')}`);
  } finally {
    publishing = false;
    for (const one of clients) one.drop();
    await cluster.kill();
    await client.quit();
    await redis.close();
  }
}

await main();
