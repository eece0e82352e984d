// `npm run soak` (docs/reliability.md, "Soak"): a real PM2 cluster (2 workers, temporary PM2_HOME,
// private redis-server with appendonly) under 2,000 streams and 100 events/s for 10 minutes, with
// `pm2 reload` every 2 minutes. The load side is built like the bench's: the publisher is the bench's own
// process (bench/publisher.ts: `value` 1, 2, 3… and a `ts` stamp), the streams are the bench's raw-socket
// clients (bench/sse-client.ts) spread over worker threads that share counters and a latency histogram
// (soak-thread.ts), so 2,000 streams at 100 events/s fit on a small machine. Every stream resumes across
// reloads with the frame id it was sent (opaque) as Last-Event-ID, and must end with every value exactly
// once, in order. Every 10 s it prints progress and samples each worker's RSS and event-loop lag p99 from
// /metrics?scope=workers; at the end it writes a JSON result and exits 1 on any loss, duplicate, reset or
// id regression, or when RSS or lag did not stay flat.
//
// Options (flags or environment): --seconds / SOAK_SECONDS (or --minutes), --streams / SOAK_STREAMS,
// --rate / SOAK_RATE, --reload-every-seconds / SOAK_RELOAD_EVERY_SECONDS (or --reload-every, minutes),
// --workers / SOAK_WORKERS, --threads / SOAK_THREADS, --out / SOAK_RESULT (JSON result file).
import { fork } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { createClient } from 'redis';
import {
  DELIVERIES,
  ERRORS,
  LATENCY_OFFSET,
  OPEN,
  RECONNECTS,
  SLOT_COUNT,
} from '../../bench/driver-layout.ts';
import { HISTOGRAM_SLOTS, summarize, type HistogramSummary } from '../../bench/histogram.ts';
import { installCleanup, stopChild, trackChild } from '../../bench/processes.ts';
import type { PublisherOptions, PublisherReport } from '../../bench/publisher.ts';
import { uniquePrefix } from '../helpers/app.ts';
import { login } from '../helpers/auth.ts';
import { startTestRedis } from '../helpers/redis-server.ts';
import { sleep } from '../helpers/sse-client.ts';
import { ROOT, startPm2Cluster, type Pm2Cluster } from '../ops/pm2-cluster.ts';
import { replaysByKind, sampleWorkers, SOAK_METRICS_TOKEN, type WorkerSample } from './soak-probes.ts';
import type { SoakThreadCommand, SoakThreadData, SoakThreadReply, SoakTotals } from './soak-thread.ts';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string' },
    minutes: { type: 'string' },
    streams: { type: 'string' },
    rate: { type: 'string' },
    'reload-every-seconds': { type: 'string' },
    'reload-every': { type: 'string' },
    workers: { type: 'string' },
    threads: { type: 'string' },
    out: { type: 'string' },
  },
});
const env = process.env;
const minutes = (value: string | undefined) => (value === undefined ? undefined : String(Number(value) * 60));
const SECONDS = Number(args.seconds ?? minutes(args.minutes) ?? env.SOAK_SECONDS ?? 600);
const STREAMS = Number(args.streams ?? env.SOAK_STREAMS ?? 2000);
const RATE = Number(args.rate ?? env.SOAK_RATE ?? 100);
const RELOAD_EVERY_S = Number(
  args['reload-every-seconds'] ?? minutes(args['reload-every']) ?? env.SOAK_RELOAD_EVERY_SECONDS ?? 120,
);
const WORKERS = Number(args.workers ?? env.SOAK_WORKERS ?? 2);
const THREADS = Number(args.threads ?? env.SOAK_THREADS ?? 2);
const OUT =
  args.out ??
  env.SOAK_RESULT ??
  path.join(ROOT, 'test-results', `soak-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
const SAMPLE_MS = 10_000;
const WARMUP_SECONDS = 2;
/** After the publisher ends, how long every stream gets to catch up. */
const DRAIN_MS = 60_000;
/** No reload this close to the end: every stream must have resumed before the drain. */
const NO_RELOAD_BEFORE_END_MS = 20_000;
/** After a reload, how long the new workers take to settle (replays for the streams that moved). */
const STEADY_AFTER_RELOAD_MS = 30_000;
/** After a reload, how long the soak waits at most for every stream to have what was published by its end. */
const CATCH_UP_LIMIT_MS = 90_000;
/** Loopback source addresses the streams are spread over (as browsers behind a few NATs). */
const SOURCE_ADDRESSES = 4;
const PUBLISHER_ENTRY = fileURLToPath(new URL('../../bench/publisher.ts', import.meta.url));
const THREAD_ENTRY = new URL('./soak-thread.ts', import.meta.url).href;

/**
 * What the memory and lag checks verify, on steady samples only (see Sample.steady), by medians so one
 * slow moment decides nothing:
 * - **No growth across reloads** (a leak would climb from one generation of workers to the next): the
 *   workers' RSS after the last reload against after the first, at most 20 % + 10 MB more. Each reload
 *   starts new workers, which take the streams' reconnect storm; comparing storm-takers with storm-takers
 *   is what tells a leak from the one-off cost of a storm.
 * - **The storm's step is bounded**: workers that took a storm against the first workers (which got their
 *   streams gradually and no storm), at most `stormStepMb` more RSS per worker. This is memory V8 and
 *   malloc keep after the storm's peak (docs/reliability.md, "Reconnect storms and memory").
 * - Event-loop lag p99: the last third of the steady samples against the first third, at most twice
 *   + 20 ms.
 * With fewer than 3 steady samples, or no steady sample before or after a reload, there is no verdict.
 */
const FLAT = { rssFactor: 1.2, rssSlackMb: 10, stormStepMb: 100, lagFactor: 2, lagSlackMs: 20 };

const log = (text: string) => process.stdout.write(`soak: ${text}\n`);

interface Sample {
  atS: number;
  published: number;
  deliveries: number;
  open: number;
  reconnects: number;
  errors: number;
  deliveryP99Ms: number;
  driverCpuPercent: number;
  /** Reloads finished before this sample: 0 for the first workers, n for the workers the n-th started. */
  generation: number;
  /** Publishing, no reload running, the last one ended over STEADY_AFTER_RELOAD_MS ago: the samples
   * the flatness verdict compares (a reload replaces the workers and moves every stream). */
  steady: boolean;
  workers: WorkerSample[];
}

/** Worker threads do not inherit tsx's loader from `--import`, so each registers it first (as bench/driver.ts). */
function startThread(data: SoakThreadData): Worker {
  const source = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(THREAD_ENTRY)}); });`;
  return new Worker(source, { eval: true, workerData: data });
}

function ask(thread: Worker, command: SoakThreadCommand): Promise<SoakThreadReply> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    thread.once('error', onError);
    thread.once('message', (reply: SoakThreadReply) => {
      thread.off('error', onError);
      resolve(reply);
    });
    thread.postMessage(command);
  });
}

function addTotals(parts: SoakTotals[]): SoakTotals {
  return parts.reduce((sum, part) => ({
    clients: sum.clients + part.clients,
    lost: sum.lost + part.lost,
    clientsWithLoss: sum.clientsWithLoss + part.clientsWithLoss,
    maxLostPerClient: Math.max(sum.maxLostPerClient, part.maxLostPerClient),
    duplicates: sum.duplicates + part.duplicates,
    clientsWithDuplicates: sum.clientsWithDuplicates + part.clientsWithDuplicates,
    idRegressions: sum.idRegressions + part.idRegressions,
    resets: sum.resets + part.resets,
    behind: sum.behind + part.behind,
    minReceived: Math.min(sum.minReceived, part.minReceived),
    connectErrors: mergeCounts(sum.connectErrors, part.connectErrors),
  }));
}

function mergeCounts(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const merged = { ...a };
  for (const [key, count] of Object.entries(b)) merged[key] = (merged[key] ?? 0) + count;
  return merged;
}

function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function startPublisher(options: PublisherOptions, onProgress: (published: number) => void) {
  const child = fork(PUBLISHER_ENTRY, [], { execArgv: ['--import', 'tsx'] });
  trackChild(child);
  let onMeasuring: () => void = () => undefined;
  const measuring = new Promise<void>((resolve) => (onMeasuring = resolve));
  type Message =
    | PublisherReport
    | { type: 'progress'; published: number }
    | { type: 'measuring' }
    | { type: 'error'; error: string };
  const done = new Promise<PublisherReport>((resolve, reject) => {
    child.on('message', (message: Message) => {
      if (message.type === 'done') resolve(message);
      else if (message.type === 'measuring') onMeasuring();
      else if (message.type === 'progress') onProgress(message.published);
      else reject(new Error(`publisher: ${message.error}`));
    });
    child.once('exit', (code) => reject(new Error(`publisher exited (${code})`)));
  });
  child.send(options);
  void done.catch(() => onMeasuring());
  return { child, measuring, done };
}

async function main(): Promise<number> {
  installCleanup();
  const redis = await startTestRedis();
  const prefix = uniquePrefix();
  const client = createClient({ url: redis.url });
  await client.connect();
  await client.configSet('appendonly', 'yes');
  let cluster: Pm2Cluster | undefined;
  const threads: Worker[] = [];
  let publisher: ReturnType<typeof startPublisher> | undefined;
  try {
    cluster = await startPm2Cluster({
      redisUrl: redis.url,
      prefix,
      instances: WORKERS,
      env: {
        METRICS_TOKEN: SOAK_METRICS_TOKEN,
        MAX_STREAMS_PER_SESSION: String(STREAMS + 100),
        // The streams come from a few loopback addresses, as many users behind NAT or a proxy: the
        // per-address cap (256 by default, docs/security.md) would refuse most of them.
        MAX_CONNECTIONS_PER_IP: String(STREAMS + 100),
        // The log must hold what a stream misses while it moves to another worker.
        HISTORY_MAX: String(Math.max(10_000, RATE * 120)),
        SSE_RETRY_MS: '500',
      },
    });
    const url = cluster.url;
    const { headers } = await login(url, { redisUrl: redis.url, prefix });
    const cookie = headers.Cookie!;
    log(
      `${STREAMS} streams, ${RATE} events/s, ${SECONDS} s, pm2 reload every ${RELOAD_EVERY_S} s, ` +
        `${WORKERS} workers, ${THREADS} client threads; result in ${OUT}`,
    );

    // The clients' shared counters and histogram.
    const buffer = new SharedArrayBuffer(SLOT_COUNT * Int32Array.BYTES_PER_ELEMENT);
    const counters = new Int32Array(buffer);
    for (let index = 0; index < THREADS; index += 1)
      threads.push(
        startThread({
          buffer,
          host: '127.0.0.1',
          port: cluster.port,
          // Room for a publisher that runs late (it sends rate x seconds values, numbered from 1).
          maxSeq: Math.ceil(RATE * SECONDS) + 1000,
          epochMs: Date.now(),
        }),
      );
    await Promise.all(
      threads.map(
        (thread) => new Promise((resolve, reject) => thread.once('message', resolve).once('error', reject)),
      ),
    );
    const openStarted = performance.now();
    const shares = threads.map(() => [] as string[]);
    for (let index = 0; index < STREAMS; index += 1) {
      shares[index % THREADS]!.push(`127.0.0.${1 + (index % SOURCE_ADDRESSES)}`);
    }
    const openReplies = await Promise.all(
      threads.map((thread, index) =>
        ask(thread, { type: 'open', cookie, localAddresses: shares[index]!, concurrency: 25 }),
      ),
    );
    const openFailures = openReplies.reduce((sum, reply) => sum + reply.failures, 0);
    log(
      `${Atomics.load(counters, OPEN)}/${STREAMS} streams open in ` +
        `${Math.round(performance.now() - openStarted)} ms`,
    );
    // A stream that never opened would count as losing every event: stop with the reason instead.
    if (openFailures > 0) {
      throw new Error(
        `${openFailures} streams did not open: ${openReplies.find((r) => r.firstError)?.firstError}`,
      );
    }

    let published = 0;
    publisher = startPublisher(
      {
        redisUrl: redis.url,
        prefix,
        ingest: 'publisher',
        rate: RATE,
        seconds: SECONDS,
        warmupSeconds: WARMUP_SECONDS,
        // No board: every event goes to `main`, which every stream gets.
        boards: [],
      },
      (count) => (published = count),
    );
    await publisher.measuring;
    const started = performance.now();
    const elapsedS = () => Math.round((performance.now() - started) / 1000);

    // Reloads, on their own schedule, while sampling goes on.
    // Reloads start every RELOAD_EVERY_S; one that ran long pushes the next to half an interval after it.
    /**
     * `catchUpMs`: from the reload's end until every stream had every event published up to then (the
     * resumes of the streams that moved, replayed); absent when that took over CATCH_UP_LIMIT_MS.
     */
    const reloads: { atS: number; ms: number; catchUpMs?: number }[] = [];
    // One command at a time to the threads: each answers its commands in order, one reply each.
    let asking: Promise<unknown> = Promise.resolve();
    const askThreads = (command: SoakThreadCommand): Promise<SoakThreadReply[]> => {
      const run = asking.then(() => Promise.all(threads.map((thread) => ask(thread, command))));
      asking = run.catch(() => undefined);
      return run;
    };
    const catchUps: Promise<void>[] = [];
    const measureCatchUp = async (reload: (typeof reloads)[number], from: number) => {
      const endedAt = performance.now();
      const target = published;
      while (performance.now() - endedAt < CATCH_UP_LIMIT_MS) {
        const replies = await askThreads({ type: 'behind', from, published: target });
        if (replies.every((reply) => reply.behind === 0)) {
          reload.catchUpMs = Math.round(performance.now() - endedAt);
          log(`t=${elapsedS()}s every stream caught up ${reload.catchUpMs} ms after the reload`);
          return;
        }
        await sleep(1000);
      }
    };
    let publishing = true;
    let reloadRunning = false;
    let lastReloadEndedAt = Number.NEGATIVE_INFINITY;
    const reloading = (async () => {
      for (let next = RELOAD_EVERY_S * 1000; ; next += RELOAD_EVERY_S * 1000) {
        next = Math.max(next, lastReloadEndedAt - started + (RELOAD_EVERY_S * 1000) / 2);
        while (publishing && performance.now() - started < next) await sleep(200);
        if (!publishing || next > SECONDS * 1000 - NO_RELOAD_BEFORE_END_MS) return;
        const atS = elapsedS();
        log(`t=${atS}s pm2 reload …`);
        // Events from a little before the reload on: what the streams that move resume from.
        const from = Math.max(0, published - RATE * 2);
        reloadRunning = true;
        const ms = Math.round(await cluster!.reload());
        reloadRunning = false;
        lastReloadEndedAt = performance.now();
        const reload = { atS, ms };
        reloads.push(reload);
        log(`t=${elapsedS()}s pm2 reload took ${ms} ms`);
        catchUps.push(measureCatchUp(reload, from));
      }
    })();

    const samples: Sample[] = [];
    let previousHistogram = new Array<number>(HISTOGRAM_SLOTS).fill(0);
    let previousCpu = process.cpuUsage();
    let previousAt = performance.now();
    const takeSample = async () => {
      const histogram = Array.from(counters.subarray(LATENCY_OFFSET, LATENCY_OFFSET + HISTOGRAM_SLOTS));
      const window = histogram.map((count, index) =>
        index === HISTOGRAM_SLOTS - 1 ? count : count - previousHistogram[index]!,
      );
      previousHistogram = histogram;
      const cpu = process.cpuUsage(previousCpu);
      const now = performance.now();
      const driverCpuPercent = Math.round(((cpu.user + cpu.system) / 1000 / (now - previousAt)) * 100);
      previousCpu = process.cpuUsage();
      previousAt = now;
      const workers = await sampleWorkers(url).catch(() => [] as WorkerSample[]);
      const sample: Sample = {
        atS: elapsedS(),
        published,
        deliveries: Atomics.load(counters, DELIVERIES),
        open: Atomics.load(counters, OPEN),
        reconnects: Atomics.load(counters, RECONNECTS),
        errors: Atomics.load(counters, ERRORS),
        deliveryP99Ms: summarize([window]).p99Ms,
        driverCpuPercent,
        generation: reloads.length,
        steady: publishing && !reloadRunning && now - lastReloadEndedAt > STEADY_AFTER_RELOAD_MS,
        workers,
      };
      samples.push(sample);
      const previous = samples.at(-2) ?? { deliveries: 0, atS: 0 };
      const rate = Math.round(
        (sample.deliveries - previous.deliveries) / Math.max(1, sample.atS - previous.atS),
      );
      log(
        `t=${sample.atS}s published ${sample.published}, delivered ${rate}/s, open ${sample.open}, ` +
          `reconnects ${sample.reconnects}, errors ${sample.errors}, delivery p99 ${sample.deliveryP99Ms} ms, ` +
          `worker RSS MB ${workers.map((w) => w.rssMb).join('/') || '?'} (heap ` +
          `${workers.map((w) => `${w.heapUsedMb}/${w.heapTotalMb}`).join(', ')}, external ` +
          `${workers.map((w) => w.externalMb).join('/')}), lag p99 ms ` +
          `${workers.map((w) => w.lagP99Ms).join('/') || '?'}, client CPU ${driverCpuPercent} %`,
      );
    };

    let finished = false;
    const report = publisher.done.finally(() => (finished = true));
    void report.catch(() => undefined);
    while (!finished) {
      const until = performance.now() + SAMPLE_MS;
      while (!finished && performance.now() < until) await sleep(250);
      if (!finished) await takeSample();
    }
    const publisherReport = await report;
    publishing = false;
    await reloading;
    await Promise.all(catchUps);
    const total = publisherReport.published;
    log(`publisher done: ${total} events (${publisherReport.failed} failed), waiting for every stream`);

    // Every stream must reach the last value (or the drain ends).
    const totalsNow = async () =>
      addTotals((await askThreads({ type: 'report', published: total })).map((reply) => reply.totals!));
    let totals = await totalsNow();
    const drainEnd = performance.now() + DRAIN_MS;
    while (totals.behind > 0 && performance.now() < drainEnd) {
      await sleep(500);
      totals = await totalsNow();
    }
    await takeSample();
    const replays = await replaysByKind(url).catch(() => ({}));

    const steady = samples.filter((sample) => sample.steady && sample.workers.length > 0);
    const third = Math.max(1, Math.floor(steady.length / 3));
    const rssOf = (part: Sample[]) =>
      median(part.map((s) => s.workers.reduce((sum, w) => sum + w.rssMb, 0) / (s.workers.length || NaN)));
    /** The worst worker of each sample (a sample without workers counts as none). */
    const lagOf = (part: Sample[]) =>
      median(part.map((s) => (s.workers.length ? Math.max(...s.workers.map((w) => w.lagP99Ms)) : NaN)));
    // RSS by generation of workers (the first ones, then those each reload started).
    const generations = [...new Set(steady.map((sample) => sample.generation))].sort((a, b) => a - b);
    const rssByGeneration = generations.map((generation) => ({
      generation,
      rssMb: rssOf(steady.filter((sample) => sample.generation === generation)),
    }));
    const firstWorkers = rssByGeneration.find((entry) => entry.generation === 0);
    const afterStorms = rssByGeneration.filter((entry) => entry.generation > 0);
    const rss = {
      /** The first workers (no storm). */
      beforeStormsMb: firstWorkers?.rssMb ?? NaN,
      /** The workers started by the first reload whose steady samples exist, and by the last. */
      afterFirstStormMb: afterStorms.at(0)?.rssMb ?? NaN,
      afterLastStormMb: afterStorms.at(-1)?.rssMb ?? NaN,
      byGeneration: rssByGeneration,
    };
    const lag = { startMs: lagOf(steady.slice(0, third)), endMs: lagOf(steady.slice(-third)) };
    const judged = steady.length >= 3;
    const rssJudged = afterStorms.length >= 2;
    const stepJudged = firstWorkers !== undefined && afterStorms.length >= 1;
    const rssFlat =
      !rssJudged || !(rss.afterLastStormMb > rss.afterFirstStormMb * FLAT.rssFactor + FLAT.rssSlackMb);
    const stepBounded = !stepJudged || !(rss.afterFirstStormMb - rss.beforeStormsMb > FLAT.stormStepMb);
    const lagFlat = !judged || !(lag.endMs > lag.startMs * FLAT.lagFactor + FLAT.lagSlackMs);
    const latency: HistogramSummary = summarize([
      Array.from(counters.subarray(LATENCY_OFFSET, LATENCY_OFFSET + HISTOGRAM_SLOTS)),
    ]);
    const failures = [
      totals.lost > 0 && `${totals.lost} events lost on ${totals.clientsWithLoss} streams`,
      totals.duplicates > 0 && `${totals.duplicates} duplicates on ${totals.clientsWithDuplicates} streams`,
      totals.resets > 0 && `${totals.resets} reset events`,
      totals.idRegressions > 0 && `${totals.idRegressions} envelope ids out of order`,
      publisherReport.failed > 0 && `${publisherReport.failed} publishes failed`,
      !rssFlat &&
        `worker RSS grew across reloads: ${rss.afterFirstStormMb} MB after the first, ` +
          `${rss.afterLastStormMb} MB after the last`,
      !stepBounded &&
        `a reconnect storm left ${Math.round(rss.afterFirstStormMb - rss.beforeStormsMb)} MB more RSS per ` +
          `worker (${rss.beforeStormsMb} → ${rss.afterFirstStormMb} MB; allowed ${FLAT.stormStepMb})`,
      !lagFlat && `event-loop lag p99 grew from ${lag.startMs} to ${lag.endMs} ms`,
    ].filter((entry): entry is string => typeof entry === 'string');
    const result = {
      ok: failures.length === 0,
      failures,
      settings: {
        seconds: SECONDS,
        streams: STREAMS,
        rate: RATE,
        reloadEverySeconds: RELOAD_EVERY_S,
        workers: WORKERS,
        clientThreads: THREADS,
        flat: FLAT,
      },
      host: {
        cpus: os.cpus().length,
        loadAverageAtEnd: os.loadavg().map((value) => Math.round(value * 10) / 10),
      },
      published: total,
      publisherMaxBehindMs: publisherReport.maxBehindMs,
      achievedRate:
        Math.round((total / ((publisherReport.endedAt - publisherReport.startedAt) / 1000)) * 10) / 10,
      totals,
      reconnects: Atomics.load(counters, RECONNECTS),
      connectErrors: Atomics.load(counters, ERRORS),
      reloads,
      deliveryLatency: latency,
      replays,
      steadySamples: steady.length,
      flatJudged: { lag: judged, rssAcrossReloads: rssJudged, stormStep: stepJudged },
      rss,
      lag,
      samples,
    };
    await mkdir(path.dirname(OUT), { recursive: true });
    await writeFile(OUT, `${JSON.stringify(result, null, 2)}\n`);
    log(
      [
        `result: ${result.ok ? 'OK' : `FAILED (${failures.join('; ')})`}`,
        `  ${total} events at ${result.achievedRate}/s to ${totals.clients} streams: lost ${totals.lost}, ` +
          `duplicates ${totals.duplicates}, resets ${totals.resets}, id regressions ${totals.idRegressions}`,
        `  reconnects ${result.reconnects}, connect errors ${result.connectErrors} ` +
          `(${JSON.stringify(totals.connectErrors)}), reloads ` +
          `${reloads.map((r) => `${r.ms} ms (caught up ${r.catchUpMs === undefined ? `> ${CATCH_UP_LIMIT_MS}` : r.catchUpMs} ms after)`).join(', ') || 'none'}`,
        `  resumes replayed by kind: ${JSON.stringify(replays)}`,
        `  delivery latency p50 ${latency.p50Ms} ms, p99 ${latency.p99Ms} ms, max ${latency.maxMs} ms`,
        `  publisher at most ${publisherReport.maxBehindMs} ms behind its schedule; client CPU ` +
          `${median(samples.map((sample) => sample.driverCpuPercent))} % (median of the samples)`,
        `  ${steady.length} steady samples${judged ? '' : ' (too few to judge lag)'}; event-loop lag p99 ms ` +
          `(median, first/last third): ${lag.startMs} → ${lag.endMs}`,
        `  worker RSS MB (median of steady samples) by generation: ` +
          `${rss.byGeneration.map((entry) => `${entry.generation === 0 ? 'first workers' : `after reload ${entry.generation}`} ${entry.rssMb}`).join(', ')}` +
          `${rssJudged ? '' : ' (fewer than 2 reloads with steady samples: growth across reloads not judged)'}` +
          `${stepJudged ? '' : ' (storm step not judged)'}`,
        `  written to ${OUT}`,
      ].join('\n'),
    );
    return result.ok ? 0 : 1;
  } finally {
    if (publisher) await stopChild(publisher.child, 'SIGTERM', 2000);
    await Promise.all(threads.map((thread) => ask(thread, { type: 'close' }).catch(() => undefined)));
    await Promise.all(threads.map((thread) => thread.terminate()));
    await cluster?.kill();
    await client.quit();
    await redis.close();
  }
}

process.exitCode = await main();
