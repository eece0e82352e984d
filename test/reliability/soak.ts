// `npm run soak -- --minutes 10 --streams 2000 --rate 100 --reload-every 2`: a real PM2 cluster (2
// workers, temporary PM2_HOME, private redis-server with appendonly) under steady load, with `pm2 reload`
// at an interval. Prints worker RSS and event-loop lag over time, reload durations and, per stream, what
// was lost (must be nothing) and how many duplicates were dropped. docs/reliability.md has the figures.
// Each stream keeps O(1) state (last value, counts), so 2,000 streams x 60,000 events fit in memory.
import { parseArgs } from 'node:util';
import { EventSource, type FetchLike } from 'eventsource';
import { createClient } from 'redis';
import { createPublisher } from '../../shared/publisher.ts';
import { compareStreamIds } from '../../shared/events.ts';
import { uniquePrefix } from '../helpers/app.ts';
import { login } from '../helpers/auth.ts';
import { startTestRedis } from '../helpers/redis-server.ts';
import { startPm2Cluster } from '../ops/pm2-cluster.ts';
import { sleep } from '../helpers/sse-client.ts';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    streams: { type: 'string', default: '2000' },
    rate: { type: 'string', default: '100' },
    'reload-every': { type: 'string', default: '2' },
    workers: { type: 'string', default: '2' },
  },
});
const MINUTES = Number(args.minutes);
const STREAMS = Number(args.streams);
const RATE = Number(args.rate);
const RELOAD_EVERY_MS = Number(args['reload-every']) * 60_000;
const WORKERS = Number(args.workers);
const SAMPLE_MS = 10_000;
const METRICS_TOKEN = 'soak-metrics-token-0123456789';

interface StreamState {
  source: EventSource;
  lastValue: number;
  lastId: string;
  received: number;
  duplicates: number;
  gaps: number;
  opens: number;
}

function openStream(url: string, headers: Record<string, string>): StreamState {
  const fetchWithHeaders: FetchLike = (input, init) =>
    fetch(input, { ...init, headers: { ...(init?.headers ?? {}), ...headers } });
  const source = new EventSource(url, { fetch: fetchWithHeaders });
  const state: StreamState = {
    source,
    lastValue: -1,
    lastId: '0-0',
    received: 0,
    duplicates: 0,
    gaps: 0,
    opens: 0,
  };
  source.addEventListener('open', () => (state.opens += 1));
  source.addEventListener('metric', (message) => {
    // The event's own id; the frame's id (lastEventId) is the stream's cursor (docs/events.md, "Resume").
    const { id, value } = JSON.parse(message.data) as { id: string; value: number };
    if (compareStreamIds(id, state.lastId) <= 0) {
      state.duplicates += 1;
      return;
    }
    // Values are published 0, 1, 2, …: anything but the next one is a loss (the first may start later).
    if (state.lastValue >= 0 && value !== state.lastValue + 1) state.gaps += value - state.lastValue - 1;
    state.lastValue = value;
    state.lastId = id;
    state.received += 1;
  });
  return state;
}

/** Per worker: RSS from PM2, event-loop lag p99 from the worker's own default metrics. */
async function sample(cluster: Awaited<ReturnType<typeof startPm2Cluster>>) {
  const list = JSON.parse(await cluster.pm2(['jlist'])) as { pid: number; monit?: { memory?: number } }[];
  const rssMb = list.map((worker) => Math.round((worker.monit?.memory ?? 0) / 1e6));
  const text = await (
    await fetch(`${cluster.url}/metrics?scope=workers`, {
      headers: { Authorization: `Bearer ${METRICS_TOKEN}` },
    })
  ).text();
  const lagMs = text
    .split('\n')
    .filter((line) => line.startsWith('nodejs_eventloop_lag_p99_seconds{'))
    .map((line) => Math.round(Number(line.slice(line.lastIndexOf(' ') + 1)) * 1000));
  return { rssMb, lagMs };
}

async function main(): Promise<void> {
  const redis = await startTestRedis();
  const prefix = uniquePrefix();
  const client = createClient({ url: redis.url });
  await client.connect();
  // Persistence as in production (appendonly), set on the private server.
  await client.configSet('appendonly', 'yes');
  const cluster = await startPm2Cluster({
    redisUrl: redis.url,
    prefix,
    instances: WORKERS,
    env: {
      METRICS_TOKEN,
      MAX_STREAMS_PER_SESSION: String(STREAMS + 100),
      // Every soak stream comes from 127.0.0.1, as from a proxy: the per-address cap (256 by default,
      // docs/security.md) would refuse all but 256 per worker, and a refused EventSource never retries.
      MAX_CONNECTIONS_PER_IP: String(STREAMS + 100),
      HISTORY_MAX: String(Math.max(10_000, RATE * 120)),
      SSE_RETRY_MS: '500',
    },
  });
  const streams: StreamState[] = [];
  try {
    const { headers } = await login(cluster.url, { redisUrl: redis.url, prefix });
    console.log(
      `soak: ${STREAMS} streams, ${RATE} events/s, ${MINUTES} min, pm2 reload every ${RELOAD_EVERY_MS / 60_000} min, ${WORKERS} workers`,
    );
    for (let index = 0; index < STREAMS; index += 1) {
      streams.push(openStream(`${cluster.url}/events`, headers));
      if (index % 100 === 99) await sleep(200);
    }
    const deadline = Date.now() + 60_000;
    while (streams.some((stream) => stream.opens === 0) && Date.now() < deadline) await sleep(200);
    const opened = streams.filter((stream) => stream.opens > 0).length;
    console.log(`soak: ${opened}/${STREAMS} streams open`);
    // A stream that never opened would be counted as losing every event: stop with the reason instead.
    if (opened < STREAMS) throw new Error(`only ${opened} of ${STREAMS} streams opened within 60 s`);

    const publisher = createPublisher(client, { prefix });
    let published = 0;
    let publishFailures = 0;
    const publishTimer = setInterval(() => {
      const value = published++;
      publisher.publish({ type: 'metric', name: 'soak', value }).catch(() => (publishFailures += 1));
    }, 1000 / RATE);

    const started = Date.now();
    const end = started + MINUTES * 60_000;
    const samples: { atS: number; rssMb: number[]; lagMs: number[] }[] = [];
    const reloads: number[] = [];
    let nextReload = started + RELOAD_EVERY_MS;
    while (Date.now() < end) {
      await sleep(Math.min(SAMPLE_MS, Math.max(0, end - Date.now())));
      const figures = await sample(cluster).catch(() => ({ rssMb: [], lagMs: [] }));
      const atS = Math.round((Date.now() - started) / 1000);
      samples.push({ atS, ...figures });
      console.log(
        `soak: t=${atS}s rss MB ${figures.rssMb.join('/')} lag p99 ms ${figures.lagMs.join('/')} published ${published}`,
      );
      if (Date.now() >= nextReload && Date.now() < end - 20_000) {
        const reloadMs = await cluster.reload();
        reloads.push(Math.round(reloadMs));
        console.log(`soak: pm2 reload took ${Math.round(reloadMs)} ms`);
        nextReload += RELOAD_EVERY_MS;
      }
    }
    clearInterval(publishTimer);
    const total = published;
    // Let the last events arrive.
    const settle = Date.now() + 30_000;
    while (streams.some((stream) => stream.lastValue < total - 1) && Date.now() < settle) await sleep(250);

    const lost = streams.map((stream) => stream.gaps + Math.max(0, total - 1 - stream.lastValue));
    const first = samples.slice(0, 3);
    const last = samples.slice(-3);
    const mean = (values: number[]) =>
      values.length ? Math.round(values.reduce((a, b) => a + b, 0) / values.length) : NaN;
    console.log(
      [
        `soak result: ${total} events published (${publishFailures} publish failures), ${streams.length} streams`,
        `  lost events: ${lost.reduce((a, b) => a + b, 0)} (streams with a loss: ${lost.filter((count) => count > 0).length})`,
        `  duplicates dropped by id: ${streams.reduce((sum, stream) => sum + stream.duplicates, 0)}`,
        `  reconnects: ${streams.reduce((sum, stream) => sum + stream.opens - 1, 0)}`,
        `  reloads: ${reloads.map((ms) => `${ms} ms`).join(', ') || 'none'}`,
        `  worker RSS MB, first 30 s: ${mean(first.flatMap((entry) => entry.rssMb))}, last 30 s: ${mean(last.flatMap((entry) => entry.rssMb))}`,
        `  event-loop lag p99 ms, first 30 s: ${mean(first.flatMap((entry) => entry.lagMs))}, last 30 s: ${mean(last.flatMap((entry) => entry.lagMs))}`,
      ].join('\n'),
    );
    process.exitCode = lost.some((count) => count > 0) ? 1 : 0;
  } finally {
    for (const stream of streams) stream.source.close();
    await cluster.kill();
    await client.quit();
    await redis.close();
  }
}

await main();
