// `npm run bench`: fan-out throughput, latency and memory of one worker at thousands of SSE connections.
// A real worker (child process, `node --import tsx server/main.ts`) on a private redis-server; N real
// HTTP clients in this process parse the stream; a publisher sequences metric events at a fixed rate.
// Prints medians over the repeats. Options: --clients 1000,4000 --rate 25 --seconds 10 --repeats 3
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { createClient } from 'redis';
import { createPublisher } from '../shared/publisher.ts';
import { login } from '../test/helpers/auth.ts';
import { freePort, startTestRedis } from '../test/helpers/redis-server.ts';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000,4000' },
    rate: { type: 'string', default: '25' },
    seconds: { type: 'string', default: '10' },
    repeats: { type: 'string', default: '3' },
  },
});
const CLIENT_COUNTS = String(values.clients).split(',').map(Number);
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const REPEATS = Number(values.repeats);
const PREFIX = 'pbbench';
/** Every this-many-th client measures latency; all count deliveries. */
const LATENCY_SAMPLE = 20;

interface RunResult {
  clients: number;
  connectMs: number;
  rssIdleMiB: number;
  rssConnectedMiB: number;
  kibPerConnection: number;
  cpuPercent: number;
  delivered: number;
  expected: number;
  p50: number;
  p99: number;
  max: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function procStats(pid: number): Promise<{ rssMiB: number; cpuSeconds: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]); // utime + stime, fields 14 and 15
  return { rssMiB: rssKiB / 1024, cpuSeconds: ticks / 100 };
}

async function waitHealthy(url: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('worker did not become healthy');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Latency histogram in 1 ms buckets up to 10 s. */
class Histogram {
  readonly counts = new Uint32Array(10_001);
  total = 0;
  add(ms: number): void {
    this.counts[Math.min(10_000, Math.max(0, Math.round(ms)))]! += 1;
    this.total += 1;
  }
  quantile(q: number): number {
    const target = Math.ceil(this.total * q);
    let seen = 0;
    for (let ms = 0; ms < this.counts.length; ms += 1) {
      seen += this.counts[ms]!;
      if (seen >= target) return ms;
    }
    return 10_000;
  }
}

const FRAME_END = Buffer.from('\n\n');

/**
 * One stream. Every client counts frames on raw bytes (cheap, so the bench process does not become the
 * bottleneck); every LATENCY_SAMPLE-th client also parses `ts` for the latency histogram.
 */
function openClient(
  url: string,
  headers: Record<string, string>,
  histogram: Histogram | undefined,
  counter: { events: number },
): Promise<http.ClientRequest> {
  return new Promise((resolve, reject) => {
    const request = http.get(
      `${url}/events`,
      { headers: { Accept: 'text/event-stream', ...headers }, agent: false },
      (response) => {
        if (response.statusCode !== 200) {
          reject(new Error(`stream answered ${response.statusCode}`));
          return;
        }
        let carry: Buffer = Buffer.alloc(0);
        response.on('data', (chunk: Buffer) => {
          const data = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
          let start = 0;
          let end = data.indexOf(FRAME_END, start);
          while (end !== -1) {
            // Event frames start with `id:`; the retry and comment frames are not events.
            if (data[start] === 0x69 /* i */) {
              counter.events += 1;
              if (histogram) {
                const ts = /"ts":(\d+)/.exec(data.toString('latin1', start, end));
                if (ts) histogram.add(Date.now() - Number(ts[1]));
              }
            }
            start = end + 2;
            end = data.indexOf(FRAME_END, start);
          }
          carry = data.subarray(start);
        });
        resolve(request);
      },
    );
    request.on('error', reject);
  });
}

async function runOnce(clients: number, redisUrl: string): Promise<RunResult> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const worker: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      REDIS_URL: redisUrl,
      PULSEBOARD_PREFIX: PREFIX,
      LOG_LEVEL: 'warn',
      MAX_STREAMS_PER_SESSION: String(clients + 10),
      PULSEBOARD_ADMIN_PASSWORD: 'bench-password-1',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await waitHealthy(url);
    const session = await login(url, { redisUrl, prefix: PREFIX, username: 'bench' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const idle = await procStats(worker.pid!);

    const histogram = new Histogram();
    const counter = { events: 0 };
    const connectStarted = performance.now();
    const requests: http.ClientRequest[] = [];
    for (let opened = 0; opened < clients; opened += 200) {
      const batch = Math.min(200, clients - opened);
      requests.push(
        ...(await Promise.all(
          Array.from({ length: batch }, (_, index) =>
            openClient(
              url,
              session.headers,
              (opened + index) % LATENCY_SAMPLE === 0 ? histogram : undefined,
              counter,
            ),
          ),
        )),
      );
    }
    const connectMs = performance.now() - connectStarted;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const connected = await procStats(worker.pid!);

    const redis = createClient({ url: redisUrl });
    await redis.connect();
    const publisher = createPublisher(redis, { prefix: PREFIX });
    const total = RATE * SECONDS;
    let published = 0;
    const publishStarted = performance.now();
    while (published < total) {
      const due = Math.min(total, Math.floor(((performance.now() - publishStarted) / 1000) * RATE) + 1);
      while (published < due) {
        published += 1;
        await publisher.publish({ type: 'metric', name: 'bench.value', value: published, unit: 'n' });
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const expected = total * clients;
    const drainDeadline = Date.now() + 15_000;
    while (counter.events < expected && Date.now() < drainDeadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    const busySeconds = (performance.now() - publishStarted) / 1000;
    const after = await procStats(worker.pid!);
    await redis.quit();
    for (const request of requests) request.destroy();

    return {
      clients,
      connectMs,
      rssIdleMiB: idle.rssMiB,
      rssConnectedMiB: connected.rssMiB,
      kibPerConnection: ((connected.rssMiB - idle.rssMiB) * 1024) / clients,
      cpuPercent: ((after.cpuSeconds - connected.cpuSeconds) / busySeconds) * 100,
      delivered: counter.events,
      expected,
      p50: histogram.quantile(0.5),
      p99: histogram.quantile(0.99),
      max: histogram.quantile(1),
    };
  } finally {
    worker.kill('SIGTERM');
    await new Promise((resolve) => worker.once('exit', resolve));
  }
}

const redis = await startTestRedis();
try {
  process.stdout.write(
    `fan-out bench: ${RATE} events/s for ${SECONDS} s, clients ${CLIENT_COUNTS.join(', ')}, ${REPEATS} repeats, 1 worker\n`,
  );
  const rows: string[] = [];
  for (const clients of CLIENT_COUNTS) {
    const results: RunResult[] = [];
    for (let repeat = 1; repeat <= REPEATS; repeat += 1) {
      const result = await runOnce(clients, redis.url);
      results.push(result);
      process.stdout.write(
        `  run ${repeat}/${REPEATS} clients=${clients}: delivered ${result.delivered}/${result.expected}, p50 ${result.p50} ms, p99 ${result.p99} ms, cpu ${result.cpuPercent.toFixed(0)}%\n`,
      );
    }
    const pick = (key: keyof RunResult) => median(results.map((result) => Number(result[key])));
    const lost = results.reduce((sum, result) => sum + (result.expected - result.delivered), 0);
    rows.push(
      [
        String(clients).padStart(7),
        pick('connectMs').toFixed(0).padStart(10),
        pick('rssIdleMiB').toFixed(0).padStart(8),
        pick('rssConnectedMiB').toFixed(0).padStart(8),
        pick('kibPerConnection').toFixed(1).padStart(8),
        `${pick('cpuPercent').toFixed(0)}%`.padStart(6),
        String(pick('p50')).padStart(6),
        String(pick('p99')).padStart(6),
        String(pick('max')).padStart(6),
        String(lost).padStart(6),
      ].join(' '),
    );
  }
  process.stdout.write(
    `\nmedians of ${REPEATS} runs (latency = client receipt - sequencing ts, ms, sampled on every ${LATENCY_SAMPLE}th client;\n lost = events not delivered, all runs)\n`,
  );
  process.stdout.write(
    ' clients connect_ms  rss_idle rss_conn KiB/conn    cpu    p50    p99    max   lost\n',
  );
  for (const row of rows) process.stdout.write(`${row}\n`);
} finally {
  await redis.close();
}
