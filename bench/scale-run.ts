// A larger installation simulated on this machine (docs/scaling.md, "A larger installation on one
// machine"): a real Redis Cluster (3 primaries + 3 replicas), SCALE_HOSTS pulseboard hosts of one worker
// each, every host on its own loopback address (127.0.0.2, 127.0.0.3, …), SCALE_STREAMS SSE streams spread
// evenly over the hosts by bench/driver-pool.ts (raw-socket clients in separate processes, under the
// 20,000 open files one process may have), SCALE_BOARDS boards, and events published over HTTP
// (`POST /api/publish`, acknowledged after WAIT) to the boards in turn at SCALE_RATE events/s. Every
// stream follows every board (a wall screen), so each event is one delivery per stream.
//   npm run bench:scale                       (SCALE_HOSTS=6 SCALE_STREAMS=20000 SCALE_BOARDS=50
//                                              SCALE_RATE=10 SCALE_SECONDS=20 SCALE_OUT=bench/results/scale-run.json)
import { type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/redis-server.ts';
import { startTestCluster, type TestCluster } from '../test/helpers/redis-cluster.ts';
import { clusterEnv, loginAt, provision } from '../test/scale/scale-bed.ts';
import { DriverPool } from './driver-pool.ts';
import { summarize } from './histogram.ts';
import { cpuMicros, rssKiB } from './proc-stats.ts';
import { installCleanup, spawnTracked, stopChild } from './processes.ts';
import { benchBoards } from './run-scenario.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const HOSTS = Number(process.env.SCALE_HOSTS ?? 6);
const STREAMS = Number(process.env.SCALE_STREAMS ?? 20_000);
const BOARDS = Number(process.env.SCALE_BOARDS ?? 50);
const RATE = Number(process.env.SCALE_RATE ?? 10);
const SECONDS = Number(process.env.SCALE_SECONDS ?? 20);
const OUT = process.env.SCALE_OUT ?? 'bench/results/scale-run.json';
const STREAMS_PER_SESSION = 250;
const WARMUP_SECONDS = 1;
const DRAIN_IDLE_MS = 10_000;

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const progress = (text: string) => process.stderr.write(`  ${text}\n`);

interface Host {
  address: string;
  port: number;
  url: string;
  child: ChildProcess;
}

async function startHost(index: number, env: Record<string, string>, prefix: string): Promise<Host> {
  const address = `127.0.0.${2 + index}`;
  const port = await freePort();
  const child = spawnTracked(process.execPath, ['--import', 'tsx', path.join(ROOT, 'server/main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...env,
      HOST: address,
      PORT: String(port),
      PULSEBOARD_PREFIX: prefix,
      NODE_APP_INSTANCE: String(index),
      METRICS_PUBLIC: 'true',
      // The load comes from a few loopback addresses and logs in once per 250 streams (as in
      // bench/systems.ts); the fd limit stays the real bound.
      MAX_STREAMS_PER_SESSION: String(STREAMS_PER_SESSION * 2),
      MAX_CONNECTIONS: '20000',
      MAX_CONNECTIONS_PER_IP: '20000',
      LOGIN_MAX_SESSIONS_PER_USER: '1000',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://${address}:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      await response.body?.cancel();
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`host ${address} exited (${child.exitCode})`);
    if (Date.now() > deadline) throw new Error(`host ${address} not healthy after 60 s`);
    await delay(200);
  }
  return { address, port, url, child };
}

async function redisCpuSeconds(cluster: TestCluster): Promise<number[]> {
  const result: number[] = [];
  for (const node of cluster.nodes) {
    const pid = node.pid;
    result.push(pid === undefined ? 0 : (await cpuMicros([pid])) / 1e6);
  }
  return result;
}

/** Publishes over HTTP, host by host in turn, on schedule (requests overlap; none waits for another). */
async function publish(hosts: Host[], token: string, boards: string[]) {
  const warmup = Math.round(RATE * WARMUP_SECONDS);
  const total = warmup + Math.round(RATE * SECONDS);
  let failed = 0;
  let firstError: string | undefined;
  let acknowledged = 0;
  const inFlight: Array<Promise<void>> = [];
  const started = performance.now();
  let startedAt = Date.now();
  for (let seq = 0; seq < total; seq += 1) {
    const due = (seq / RATE) * 1000;
    const wait = due - (performance.now() - started);
    if (wait > 0) await delay(wait);
    if (seq === warmup) startedAt = Date.now();
    const value = Math.max(0, seq - warmup + 1);
    const host = hosts[seq % hosts.length]!;
    const body = {
      type: 'metric',
      board: boards[seq % boards.length],
      name: 'bench.value',
      value: seq < warmup ? 0 : value,
      unit: 'n',
      ts: Date.now(),
    };
    inFlight.push(
      fetch(`${host.url}/api/publish`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(15_000),
      }).then(
        async (response) => {
          const text = await response.text();
          if (response.status === 200) acknowledged += 1;
          else {
            failed += 1;
            firstError ??= `${response.status} ${text.slice(0, 200)}`;
          }
        },
        (error: unknown) => {
          failed += 1;
          firstError ??= String(error);
        },
      ),
    );
  }
  await Promise.all(inFlight);
  return { published: total - warmup, acknowledged, failed, firstError, startedAt };
}

async function main(): Promise<void> {
  installCleanup();
  const started = performance.now();
  let cluster: TestCluster | undefined;
  const hosts: Host[] = [];
  const pools: DriverPool[] = [];
  try {
    progress(`starting a Redis Cluster 3+3`);
    cluster = await startTestCluster();
    const env = clusterEnv(cluster);
    const prefix = `scale${Date.now().toString(36)}`;
    const boards = benchBoards(BOARDS);
    const token = await provision(env, prefix, boards);
    progress(`starting ${HOSTS} hosts on 127.0.0.2..${1 + HOSTS}`);
    for (let index = 0; index < HOSTS; index += 1) hosts.push(await startHost(index, env, prefix));
    const pids = hosts.map((host) => host.child.pid!);
    const cookies: string[] = [];
    for (let index = 0; index < Math.ceil(STREAMS / STREAMS_PER_SESSION); index += 1) {
      cookies.push((await loginAt(hosts[index % hosts.length]!.url)).Cookie!);
    }
    await delay(2000);
    const idleRss = await rssKiB(pids);

    const epochMs = Date.now();
    const maxSeq = Math.ceil(RATE * SECONDS) + 10;
    const setupStarted = performance.now();
    let openFailures = 0;
    await Promise.all(
      hosts.map(async (host, index) => {
        const streams = Math.floor(STREAMS / HOSTS) + (index < STREAMS % HOSTS ? 1 : 0);
        const pool = await DriverPool.start({
          host: host.address,
          port: host.port,
          streams,
          threadsPerDriver: 1,
          epochMs,
          maxSeq,
        });
        pools.push(pool);
        const opened = await pool.open(
          cookies.filter((_, at) => at % HOSTS === index),
          50,
        );
        openFailures += opened.failures;
        if (opened.firstError) progress(`host ${host.address}: first open error ${opened.firstError}`);
      }),
    );
    const setupMs = Math.round(performance.now() - setupStarted);
    progress(`${STREAMS - openFailures}/${STREAMS} streams open in ${(setupMs / 1000).toFixed(1)} s`);
    await delay(3000);
    const connectedRss = await rssKiB(pids);
    const perHostStreams = await Promise.all(pools.map(async (pool) => (await pool.stats()).open));

    const cpuBefore = await cpuMicros(pids);
    const redisBefore = await redisCpuSeconds(cluster);
    const windowStarted = performance.now();
    const ticker = setInterval(() => {
      void Promise.all(pools.map((pool) => pool.stats())).then((all) => {
        const deliveries = all.reduce((sum, stats) => sum + stats.deliveries, 0);
        progress(`${Math.round((performance.now() - windowStarted) / 1000)} s: ${deliveries} deliveries`);
      });
    }, 5000);
    const outcome = await publish(hosts, token, boards).finally(() => clearInterval(ticker));
    const expected = outcome.published * (STREAMS - openFailures);
    let lastCount = -1;
    let lastChange = performance.now();
    let stats = await Promise.all(pools.map((pool) => pool.stats()));
    const deliveries = () => stats.reduce((sum, part) => sum + part.deliveries, 0);
    while (deliveries() < expected && performance.now() - lastChange < DRAIN_IDLE_MS) {
      await delay(200);
      stats = await Promise.all(pools.map((pool) => pool.stats()));
      if (deliveries() !== lastCount) {
        lastCount = deliveries();
        lastChange = performance.now();
      }
    }
    const windowMs = performance.now() - windowStarted;
    const cpuUsed = (await cpuMicros(pids)) - cpuBefore;
    const redisAfter = await redisCpuSeconds(cluster);
    const peakRss = await rssKiB(pids);
    const totals = await Promise.all(pools.map((pool) => pool.totals(1, outcome.published)));
    const sum = (pick: (part: (typeof totals)[number]) => number) =>
      totals.reduce((all, part) => all + pick(part), 0);
    const lastReceiveMs = Math.max(...stats.map((part) => part.lastReceiveMs));
    const deliverySpanMs = Math.max(1, lastReceiveMs - (outcome.startedAt - epochMs));
    const metrics = await fetch(`${hosts[0]!.url}/metrics`).then((response) => response.text());
    const result = {
      date: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        model: os.cpus()[0]?.model,
        node: process.version,
        loadAverage: os.loadavg(),
      },
      settings: { hosts: HOSTS, streams: STREAMS, boards: BOARDS, rate: RATE, seconds: SECONDS },
      topology: 'Redis Cluster 3 primaries + 3 replicas (redis-server 7.0), one worker per host',
      streamsPerHost: perHostStreams,
      openFailures,
      setupMs,
      published: outcome.published,
      acknowledged: outcome.acknowledged,
      publishFailures: outcome.failed,
      ...(outcome.firstError ? { firstPublishError: outcome.firstError } : {}),
      expected,
      delivered: deliveries(),
      deliveredPerSec: Math.round((deliveries() / deliverySpanMs) * 1000),
      lost: sum((part) => part.lost),
      clientsWithLoss: sum((part) => part.clientsWithLoss),
      duplicates: sum((part) => part.duplicates),
      reconnects: stats.reduce((all, part) => all + part.reconnects, 0),
      latency: summarize(stats.flatMap((part) => part.latency)),
      cpuMicrosPerDelivery: Math.round((cpuUsed / Math.max(1, deliveries())) * 100) / 100,
      serverCpuPercent: Math.round((cpuUsed / 1000 / windowMs) * 100),
      redisCpuPercentPerNode: redisAfter.map((after, index) =>
        Math.round(((after - redisBefore[index]!) / (windowMs / 1000)) * 100),
      ),
      rssKiBPerStream: Math.round(((connectedRss - idleRss) / STREAMS) * 10) / 10,
      rssMiBTotal: Math.round(peakRss / 1024),
      metricsConnections: /pulseboard_sse_connections (\d+)/.exec(metrics)?.[1],
      wallSeconds: Math.round((performance.now() - started) / 1000),
    };
    await writeFile(OUT, `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result, null, 2));
    progress(`wrote ${OUT}`);
  } finally {
    await Promise.allSettled(pools.map((pool) => pool.close()));
    await Promise.allSettled(hosts.map((host) => stopChild(host.child, 'SIGTERM', 3000)));
    await cluster?.close();
  }
}

await main();
