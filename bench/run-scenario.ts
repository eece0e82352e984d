// One measurement: one system, one scenario. Start the system, measure its idle memory, open the
// streams (setup time), measure memory again, publish at the scenario's rate from a separate process,
// wait for the deliveries to drain, then read loss, duplicates, latency and CPU. docs/performance.md
// ("What is measured") defines every figure.
import { fork } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { redisNames } from '../shared/keys.ts';
import { BoardStore } from '../server/auth/boards.ts';
import type { RedisClient } from '../server/redis.ts';
import { DriverPool, type PoolStats } from './driver-pool.ts';
import { summarize, type HistogramSummary } from './histogram.ts';
import { cpuMicros, cpuTimes, memoryAfterGc, rssKiB } from './proc-stats.ts';
import { trackChild, stopChild } from './processes.ts';
import type { PublisherOptions, PublisherReport } from './publisher.ts';
import type { Scenario } from './scenarios.ts';
import { startSystem, type CeilingSession, type RunningSystem, type SystemName } from './systems.ts';
import { medianOf, mergeTimelines, type EventSpread } from './timeline.ts';

export interface RunSettings {
  redisUrl: string;
  workers: number;
  threadsPerDriver: number;
  ingest: 'publisher' | 'raw';
  /** Streams opened at once while connecting. */
  openConcurrency: number;
  /**
   * Boards the events are spread over (0: none, every event on `main`). They are created first, and
   * every pulseboard stream carries all of them (the bench user is granted exactly these).
   */
  boards: number;
  /** Folder for V8 CPU profiles of pulseboard's workers (`--cpu-prof`), written when they stop. */
  cpuProfileDir?: string;
  /** Where the ceilings run: a session of their own (as pulseboard under PM2) or the bench's. */
  ceilingSession: CeilingSession;
}

/** The bench's board names: b01, b02… */
export function benchBoards(count: number): string[] {
  return Array.from({ length: count }, (_, index) => `b${String(index + 1).padStart(2, '0')}`);
}

export interface Measurement {
  system: SystemName;
  scenario: string;
  ok: boolean;
  error?: string;
  streams: number;
  rate: number;
  seconds: number;
  workers: number;
  ingest: 'publisher' | 'raw';
  /** Boards the events were spread over (absent: none). */
  boards?: number;
  published?: number;
  publisherMaxBehindMs?: number;
  expected?: number;
  delivered?: number;
  deliveredPerSec?: number;
  lost?: number;
  clientsWithLoss?: number;
  maxLostPerClient?: number;
  duplicates?: number;
  idRegressions?: number;
  reconnects?: number;
  openFailures?: number;
  /** Stream opens that failed during setup and were tried again (each after a back-off). */
  openRetries?: number;
  latency?: HistogramSummary;
  ingestLag?: HistogramSummary;
  cpuMicrosPerDelivery?: number;
  /** The same, split: user time, and system time (the kernel's work on the workers' behalf: writes, reads, wake-ups). */
  cpuUserMicrosPerDelivery?: number;
  cpuSystemMicrosPerDelivery?: number;
  /** The workers' CPU while every stream was open and nothing was published (100 = one core). */
  idleCpuPercent?: number;
  serverCpuPercent?: number;
  /** CPU of the load driver processes over the same window (100 = one core): near 100 × threads, the
   * driver, not the server, limits the figures. */
  driverCpuPercent?: number;
  loadAverage?: number;
  /** Growth of the workers' RSS per idle stream: after a forced GC when they answered, else settled. */
  idleKiBPerStream?: number;
  /** Growth of the workers' JS heap (used) per idle stream, after a forced GC. */
  idleHeapKiBPerStream?: number;
  /** Whether the memory figures were read after a forced GC (false: RSS after SETTLE_MS only). */
  memoryAfterGc?: boolean;
  setupMs?: number;
  /** The workers' CPU (utime + stime) per stream opened during the timed setup, in µs. */
  setupCpuMicrosPerOpen?: number;
  /** The workers' CPU per open in each warm-up round, in µs (see WARMUP_ROUND_MAX_STREAMS). */
  warmUpCpuMicrosPerOpen?: number[];
  /** The same after the idle memory reading's forced collections, which undo the warm-up. */
  afterGcWarmUpCpuMicrosPerOpen?: number[];
  /** The end of the server's logs, when events were lost or streams reconnected. */
  serverLogTail?: string;
  storm?: { dropped: number; reconnectedMs: number; resumedMs: number | null; resumed: number };
  /**
   * Per measured event (1..published), kept when at most PER_EVENT_MAX were published: clients that got
   * it and the first, mean and last latency (bench/timeline.ts).
   */
  perEvent?: EventSpread;
}

const PUBLISHER_ENTRY = fileURLToPath(new URL('./publisher.ts', import.meta.url));
/** Wait after start and after connecting before reading memory (then a forced GC, see proc-stats.ts). */
const SETTLE_MS = 2000;
/**
 * The warm-up (docs/performance.md, "How it measures"): before its idle memory reading and the timed setup,
 * every system opens and closes rounds of the scenario's streams (at most WARMUP_ROUND_MAX_STREAMS a
 * round) until its workers' CPU per open stops falling: a round that costs at least WARMUP_STEADY_RATIO
 * of the round before, after at least WARMUP_MIN_ROUNDS and at most WARMUP_MAX_ROUNDS. A fresh worker's
 * one-time growth (compiled code, buffer pools, caches) and its connections handled by code not yet
 * optimized are not what one more stream costs a running server. The same rule for every system, and
 * again after the idle reading, whose forced collections undo the warm-up. The rounds run through the
 * measured driver pool (`DriverPool.warm`), so its clients are warm too.
 */
const WARMUP_ROUND_MAX_STREAMS = 2000;
const WARMUP_MIN_ROUNDS = 3;
const WARMUP_MAX_ROUNDS = 5;
const WARMUP_STEADY_RATIO = 0.9;
/** Between warm-up rounds: the closed streams' ends (quota leases, hub entries) are handled first. */
const WARMUP_PAUSE_MS = 500;
/**
 * Warm-up round n opens its streams from 127.0.<block>.<WARMUP_FIRST_ADDRESS + n - 1>, never from the measured
 * streams' addresses (127.0.<block>.1…): every closed warm-up connection leaves a TIME_WAIT socket on its source
 * address for 60 s, and the kernel's search for a free port to bind slows as they fill an address's range
 * (10,000 of them on 127.0.0.1 doubled the measured setup of both systems, 2026-12-03).
 */
const WARMUP_FIRST_ADDRESS = 201;
/**
 * Runs of this process so far: every run opens its streams, warm-up included, from a block of its own,
 * 127.0.<b>.x (b counting on from FIRST_BLOCK), so it never meets the TIME_WAIT sockets an earlier system
 * or scenario left for 60 s on its addresses (docs/performance.md, "Source addresses"): the system
 * measured after another is not handicapped.
 */
let runsStarted = 0;
/**
 * Where this invocation's blocks start: 16 further on every minute, so a bench started right after
 * another (an A/B, back to back) does not reuse its first blocks while their sockets are still in
 * TIME_WAIT. There a warm-up's binds cost the driver 1–4 ms of system time each (docs/performance.md,
 * "How it measures", Source addresses).
 */
const FIRST_BLOCK = Math.floor(Date.now() / 60_000) * 16;
/** The drain ends when nothing has arrived for this long (or everything has). */
const DRAIN_IDLE_MS = 20_000;
const DRAIN_MAX_MS = 90_000;
/** After every stream of a storm has reconnected, how long to wait for all of them to resume. */
const STORM_RESUME_WAIT_MS = 30_000;
/** Runs that published at most this many measured events keep the per-event spread in their JSON. */
const PER_EVENT_MAX = 300;
/** Unmeasured events sent first (publisher.ts). */
const WARMUP_SECONDS = 1;

/** Creates the boards as `pulseboard board add` does, so events for them are let in. */
async function createBoards(redisUrl: string, prefix: string, boards: readonly string[]): Promise<void> {
  const redis: RedisClient = createClient({ url: redisUrl });
  await redis.connect();
  try {
    const store = new BoardStore(redis, redisNames(prefix));
    for (const board of boards) await store.add(board);
  } finally {
    await redis.quit();
  }
}

/**
 * One warm-up round: opens `streams` streams through the measured pool, from 127.0.<block>.<WARMUP_FIRST_ADDRESS
 * + round - 1>, and closes them; the workers' CPU µs per open.
 */
async function warmUpRound(
  pool: DriverPool,
  running: RunningSystem,
  pids: readonly number[],
  streams: number,
  concurrency: number,
  round: number,
): Promise<number> {
  const cpuBefore = await cpuMicros(pids);
  const opened = await pool.warm(running.cookies, streams, concurrency, WARMUP_FIRST_ADDRESS + round - 1);
  const cpuUsed = (await cpuMicros(pids)) - cpuBefore;
  if (opened.failures > 0) progress(`warm-up: ${opened.failures}/${streams} streams failed to open`);
  return Math.round(cpuUsed / Math.max(1, streams - opened.failures));
}

/**
 * Warms the system up until its CPU per open is steady (see WARMUP_ROUND_MAX_STREAMS); the rounds' costs.
 * Rounds are numbered from `firstRound` (their source addresses, `warmUpRound`).
 */
async function warmUp(
  label: string,
  pool: DriverPool,
  running: RunningSystem,
  pids: readonly number[],
  streams: number,
  concurrency: number,
  firstRound = 1,
): Promise<number[]> {
  const roundStreams = Math.min(streams, WARMUP_ROUND_MAX_STREAMS);
  const costs: number[] = [];
  for (let round = 1; round <= WARMUP_MAX_ROUNDS; round += 1) {
    if (round > 1) await delay(WARMUP_PAUSE_MS);
    costs.push(await warmUpRound(pool, running, pids, roundStreams, concurrency, firstRound + round - 1));
    const [previous, last] = costs.slice(-2);
    if (round >= WARMUP_MIN_ROUNDS && last! >= WARMUP_STEADY_RATIO * previous!) break;
  }
  progress(
    `${label} ${costs.length} × ${roundStreams} streams, workers' CPU per open ${costs.join(' → ')} µs`,
  );
  return costs;
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const progress = (text: string) => process.stderr.write(`  ${text}\n`);

function startPublisher(options: PublisherOptions, onProgress: (published: number) => void) {
  const child = fork(PUBLISHER_ENTRY, [], { execArgv: ['--import', 'tsx'] });
  trackChild(child);
  let onMeasuring: () => void = () => undefined;
  const measuring = new Promise<void>((resolve) => {
    onMeasuring = resolve;
  });
  const done = new Promise<PublisherReport>((resolve, reject) => {
    child.on(
      'message',
      (
        message:
          | PublisherReport
          | { type: 'progress'; published: number }
          | { type: 'measuring' }
          | { type: 'error'; error: string },
      ) => {
        if (message.type === 'done') resolve(message);
        else if (message.type === 'measuring') onMeasuring();
        else if (message.type === 'progress') onProgress(message.published);
        else reject(new Error(`publisher: ${message.error}`));
      },
    );
    child.once('exit', (code) => reject(new Error(`publisher exited (${code})`)));
  });
  child.send(options);
  // A publisher that dies during warm-up must not leave the run waiting for 'measuring'.
  void done.catch(() => onMeasuring());
  return { child, measuring, done };
}

export async function runScenario(
  system: SystemName,
  scenario: Scenario,
  settings: RunSettings,
): Promise<Measurement> {
  const prefix = `bench${Date.now().toString(36)}`;
  runsStarted += 1;
  const addressBlock = ((FIRST_BLOCK + runsStarted - 1) % 254) + 1;
  const { streams, rate, seconds } = scenario;
  const workers = Math.max(settings.workers, Math.ceil(streams / 12_500));
  const ingest = system === 'pulseboard' ? settings.ingest : 'publisher';
  const base: Measurement = {
    system,
    scenario: scenario.name,
    ok: false,
    streams,
    rate,
    seconds,
    workers,
    ingest,
    ...(settings.boards > 0 ? { boards: settings.boards } : {}),
  };
  const boards = benchBoards(settings.boards);
  if (boards.length > 0) await createBoards(settings.redisUrl, prefix, boards);
  const running = await startSystem(system, {
    redisUrl: settings.redisUrl,
    prefix,
    workers,
    streams,
    boards,
    ceilingSession: settings.ceilingSession,
    ...(settings.cpuProfileDir === undefined ? {} : { cpuProfileDir: settings.cpuProfileDir }),
  });
  let pool: DriverPool | undefined;
  try {
    const pids = await running.workerPids();
    const epochMs = Date.now();
    const maxSeq = Math.ceil(rate * seconds) + 10;
    pool = await DriverPool.start({
      host: running.host,
      port: running.port,
      streams,
      threadsPerDriver: settings.threadsPerDriver,
      epochMs,
      maxSeq,
      addressBlock,
    });
    const warmUpCosts = await warmUp(
      `${system}: warm-up`,
      pool,
      running,
      pids,
      streams,
      settings.openConcurrency,
    );
    await delay(SETTLE_MS);
    const idleRss = await rssKiB(pids);
    const idleGc = await memoryAfterGc(running.memoryDir, pids);
    // The idle reading's forced collections undo the warm-up: the next round of opens costs the workers what
    // the first rounds did (docs/performance.md, "Warm-up"). Warmed up again by the same rule before the timed
    // setup, from the next rounds' addresses.
    const afterGcCosts = idleGc
      ? await warmUp(
          `${system}: after the idle reading, warm-up`,
          pool,
          running,
          pids,
          streams,
          settings.openConcurrency,
          warmUpCosts.length + 1,
        )
      : undefined;
    if (afterGcCosts) await delay(WARMUP_PAUSE_MS);
    const warmUpErrors = (await pool.stats()).errors;
    const setupCpuBefore = await cpuMicros(pids);
    const setupStarted = performance.now();
    const opening = setInterval(() => {
      void pool!.stats().then(
        (stats) => progress(`${system}: ${stats.open}/${streams} streams open`),
        () => undefined,
      );
    }, 5000);
    const opened = await pool
      .open(running.cookies, settings.openConcurrency)
      .finally(() => clearInterval(opening));
    const setupMs = Math.round(performance.now() - setupStarted);
    const setupCpuPerOpen = Math.round(
      ((await cpuMicros(pids)) - setupCpuBefore) / Math.max(1, streams - opened.failures),
    );
    // Attempts that failed and were retried after a back-off (200 ms, 400 ms, …) lengthen the setup.
    const openRetries = (await pool.stats()).errors - warmUpErrors;
    progress(
      `${system}: ${streams - opened.failures}/${streams} streams open in ${(setupMs / 1000).toFixed(1)} s (workers ${setupCpuPerOpen} µs CPU per open)${openRetries > 0 ? `, ${openRetries} attempts failed and retried` : ''}${opened.firstError ? ` (first error: ${opened.firstError})` : ''}`,
    );
    if (opened.failures === streams) throw new Error(`no stream opened: ${opened.firstError}`);
    const idleCpuBefore = await cpuMicros(pids);
    const idleStarted = performance.now();
    await delay(SETTLE_MS + streams / 10);
    const idleCpuPercent = Math.round(
      ((await cpuMicros(pids)) - idleCpuBefore) / 10 / (performance.now() - idleStarted),
    );
    const connectedRss = await rssKiB(pids);
    const connectedGc = idleGc && (await memoryAfterGc(running.memoryDir, pids));
    const perStream = (before: number, after: number) => Math.round(((after - before) / streams) * 10) / 10;
    if (idleGc && connectedGc) {
      progress(
        `${system}: idle streams after GC: heap ${perStream(idleGc.heapUsedKiB, connectedGc.heapUsedKiB)} KiB, RSS ${perStream(idleGc.rssKiB, connectedGc.rssKiB)} KiB per stream (RSS without GC ${perStream(idleRss, connectedRss)})`,
      );
    }

    let published = 0;
    const publisher = startPublisher(
      { redisUrl: settings.redisUrl, prefix, ingest, rate, seconds, warmupSeconds: WARMUP_SECONDS, boards },
      (count) => {
        published = count;
      },
    );
    await publisher.measuring;
    const cpuBefore = await cpuTimes(pids);
    const driverCpuBefore = await cpuMicros(pool.pids);
    const windowStarted = performance.now();
    const ticker = setInterval(() => {
      void pool!.stats().then(
        (stats) => report(system, stats, published, streams),
        () => undefined,
      );
    }, 1000);
    let storm: Measurement['storm'];
    try {
      if (scenario.stormAfterSeconds !== undefined)
        storm = await runStorm(pool, scenario.stormAfterSeconds, streams, settings.openConcurrency);
      const publisherReport = await publisher.done;
      await stopChild(publisher.child, 'SIGTERM', 1000);
      const expected = publisherReport.published * streams;
      let stats = await pool.stats();
      let lastCount = -1;
      let lastChange = performance.now();
      const drainStarted = performance.now();
      while (
        stats.deliveries < expected &&
        performance.now() - lastChange < DRAIN_IDLE_MS &&
        performance.now() - drainStarted < DRAIN_MAX_MS
      ) {
        await delay(100);
        stats = await pool.stats();
        if (stats.frames !== lastCount) {
          lastCount = stats.frames;
          lastChange = performance.now();
        }
      }
      const cpuAfter = await cpuTimes(pids);
      const userUsed = cpuAfter.user - cpuBefore.user;
      const systemUsed = cpuAfter.system - cpuBefore.system;
      const cpuUsed = userUsed + systemUsed;
      const driverCpuUsed = (await cpuMicros(pool.pids)) - driverCpuBefore;
      const windowMs = performance.now() - windowStarted;
      const totals = await pool.totals(1, publisherReport.published);
      const spread = mergeTimelines(await pool.timelines(), 1, publisherReport.published);
      reportSpread(system, spread);
      const perDelivery = (micros: number) =>
        stats.deliveries > 0 ? Math.round((micros / stats.deliveries) * 100) / 100 : 0;
      const deliverySpanMs = Math.max(1, stats.lastReceiveMs - (publisherReport.startedAt - epochMs));
      const serverLogTail =
        totals.lost > 0 || stats.reconnects > 0 ? (await running.logs()).slice(-4000) : undefined;
      return {
        ...base,
        ok: true,
        published: publisherReport.published,
        publisherMaxBehindMs: publisherReport.maxBehindMs,
        expected,
        delivered: stats.deliveries,
        deliveredPerSec: Math.round((stats.deliveries / deliverySpanMs) * 1000),
        lost: totals.lost,
        clientsWithLoss: totals.clientsWithLoss,
        maxLostPerClient: totals.maxLostPerClient,
        duplicates: totals.duplicates,
        // Ids of different boards come from different logs: their order says nothing across boards.
        ...(boards.length > 0 ? {} : { idRegressions: totals.idRegressions }),
        reconnects: stats.reconnects,
        openFailures: opened.failures,
        openRetries,
        latency: summarize(stats.latency),
        ingestLag: summarize(stats.ingestLag),
        cpuMicrosPerDelivery: perDelivery(cpuUsed),
        cpuUserMicrosPerDelivery: perDelivery(userUsed),
        cpuSystemMicrosPerDelivery: perDelivery(systemUsed),
        idleCpuPercent,
        serverCpuPercent: Math.round((cpuUsed / 1000 / windowMs) * 100),
        driverCpuPercent: Math.round((driverCpuUsed / 1000 / windowMs) * 100),
        loadAverage: os.loadavg()[0]!,
        ...(idleGc && connectedGc
          ? {
              idleKiBPerStream: perStream(idleGc.rssKiB, connectedGc.rssKiB),
              idleHeapKiBPerStream: perStream(idleGc.heapUsedKiB, connectedGc.heapUsedKiB),
              memoryAfterGc: true,
            }
          : { idleKiBPerStream: perStream(idleRss, connectedRss), memoryAfterGc: false }),
        setupMs,
        setupCpuMicrosPerOpen: setupCpuPerOpen,
        warmUpCpuMicrosPerOpen: warmUpCosts,
        ...(afterGcCosts === undefined ? {} : { afterGcWarmUpCpuMicrosPerOpen: afterGcCosts }),
        ...(storm ? { storm } : {}),
        ...(publisherReport.published <= PER_EVENT_MAX ? { perEvent: spread } : {}),
        ...(serverLogTail ? { serverLogTail } : {}),
      };
    } finally {
      clearInterval(ticker);
      await stopChild(publisher.child, 'SIGKILL', 0);
    }
  } catch (error) {
    return { ...base, error: error instanceof Error ? error.message.split('\n')[0]! : String(error) };
  } finally {
    await pool?.close();
    await running.stop();
  }
}

async function runStorm(
  pool: DriverPool,
  afterSeconds: number,
  streams: number,
  concurrency: number,
): Promise<NonNullable<Measurement['storm']>> {
  await delay(afterSeconds * 1000);
  progress(`storm: dropping ${streams} streams`);
  const dropped = performance.now();
  let reconnectedMs: number | undefined;
  let failures = 0;
  const reconnecting = pool.storm(concurrency).then((outcome) => {
    reconnectedMs = Math.round(performance.now() - dropped);
    failures = outcome.failures;
  });
  // Resumed = the reopened stream delivered an event newer than any seen before the drop (sse-client.ts).
  let resumedMs: number | null = null;
  let resumed = 0;
  let deadline = Number.POSITIVE_INFINITY;
  while (performance.now() < deadline) {
    resumed = (await pool.stats()).resumed;
    if (reconnectedMs !== undefined) {
      if (resumed >= streams - failures) {
        resumedMs = Math.round(performance.now() - dropped);
        break;
      }
      deadline = Math.min(deadline, performance.now() + STORM_RESUME_WAIT_MS);
    }
    await delay(50);
  }
  await reconnecting;
  progress(
    `storm: reconnected in ${reconnectedMs} ms, ${resumed}/${streams} resumed${resumedMs === null ? ' (not all)' : ` in ${resumedMs} ms`}`,
  );
  return { dropped: streams, reconnectedMs: reconnectedMs ?? 0, resumedMs, resumed };
}

/**
 * The per-event spread in one line: medians over the events of the first, mean and last latency, and the
 * mean latency of the first and the last tenth of the events (a backlog shows as a growing mean).
 */
function reportSpread(system: SystemName, spread: EventSpread): void {
  const tenth = Math.max(1, Math.floor(spread.meanMs.length / 10));
  const ms = (value: number | null) => (value === null ? '–' : `${value} ms`);
  progress(
    `${system}: per event (median over ${spread.meanMs.length}): first ${ms(medianOf(spread.firstMs))}, mean ${ms(medianOf(spread.meanMs))}, last ${ms(medianOf(spread.lastMs))}; mean of the first tenth ${ms(medianOf(spread.meanMs.slice(0, tenth)))}, of the last tenth ${ms(medianOf(spread.meanMs.slice(-tenth)))}`,
  );
}

function report(system: SystemName, stats: PoolStats, published: number, streams: number): void {
  const latency = summarize(stats.latency);
  progress(
    `${system}: published ${published}, delivered ${stats.deliveries}/${published * streams} (all frames ${stats.frames}), open ${stats.open}, reconnects ${stats.reconnects}, p50 ${latency.p50Ms} ms, p99 ${latency.p99Ms} ms`,
  );
}
