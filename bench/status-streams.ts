// `npx tsx bench/status-streams.ts [streams] [changes]`: one worker, one public status page, `streams`
// public streams (raw sockets, no EventSource) and `changes` status changes of a shown service published
// one after another; prints publish-to-arrival latency over every stream and change (p50, p99, max), the
// bytes each stream got per change, and the worker's heap per open stream (docs/status-pages.md).
// The clients run in the same process as the worker: the heap figure includes their side, an upper bound.
import http from 'node:http';
import { BoardStore } from '../server/auth/boards.ts';
import { publishControl } from '../server/bus/control.ts';
import { loadConfig } from '../server/config.ts';
import { createLogger } from '../server/log.ts';
import { startPulseboard } from '../server/pulseboard.ts';
import { redisNames } from '../shared/keys.ts';
import { createPublisher } from '../shared/publisher.ts';
import { startTestRedis } from '../test/helpers/redis-server.ts';
import { createClient } from 'redis';

const STREAMS = Number(process.argv[2] ?? 1000);
const CHANGES = Number(process.argv[3] ?? 20);
const PREFIX = 'statusbench';

const redis = await startTestRedis();
const client = createClient({ url: redis.url });
await client.connect();
const names = redisNames(PREFIX);
const config = loadConfig({
  PORT: '0',
  HOST: '127.0.0.1',
  REDIS_URL: redis.url,
  PULSEBOARD_PREFIX: PREFIX,
  PULSEBOARD_ADMIN_PASSWORD: 'bench-password-unused',
  LOG_LEVEL: 'silent',
  STATUS_RATE_PER_MINUTE: String(STREAMS * 2),
  STATUS_MAX_STREAMS: String(STREAMS + 10),
  MAX_CONNECTIONS_PER_IP: String(STREAMS + 100),
});
const app = await startPulseboard(config, { log: createLogger('silent'), defaultMetrics: false });
await new BoardStore(client, names).setPublic('main', { services: ['api', 'web'], embedOrigins: [] });
await publishControl(client, names, { type: 'public-changed', board: 'main' });
const publisher = createPublisher(client, { prefix: PREFIX });

const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const heapBefore = process.memoryUsage().heapUsed;

/** Per stream: when each change's message arrived, and how many bytes came after the snapshot. */
const arrivals: Map<string, number>[] = [];
const requests: http.ClientRequest[] = [];
let snapshots = 0;
let liveBytes = 0;
for (let index = 0; index < STREAMS; index += 1) {
  const seen = new Map<string, number>();
  arrivals.push(seen);
  const request = http.get(`${app.url}/status/main/events`, { agent: false });
  requests.push(request);
  request.on('error', () => undefined);
  request.on('response', (response) => {
    response.setEncoding('utf8');
    let started = false;
    response.on('data', (chunk: string) => {
      const now = performance.now();
      if (!started && chunk.includes('event: snapshot')) {
        started = true;
        snapshots += 1;
        return;
      }
      liveBytes += Buffer.byteLength(chunk);
      for (const match of chunk.matchAll(/"message":"change (\d+)"/g)) seen.set(match[1] ?? '', now);
    });
  });
}
while (snapshots < STREAMS) await new Promise((resolve) => setTimeout(resolve, 20));
gc?.();
const heapPerStream = (process.memoryUsage().heapUsed - heapBefore) / STREAMS;

const latencies: number[] = [];
for (let change = 0; change < CHANGES; change += 1) {
  const sentAt = performance.now();
  await publisher.publish({
    type: 'status',
    service: 'api',
    state: change % 2 ? 'ok' : 'degraded',
    message: `change ${change}`,
  });
  // Private noise between changes: never reaches a public stream.
  await publisher.publish({ type: 'metric', name: 'noise', value: change });
  while (arrivals.some((seen) => !seen.has(String(change))))
    await new Promise((resolve) => setTimeout(resolve, 2));
  for (const seen of arrivals) latencies.push((seen.get(String(change)) ?? sentAt) - sentAt);
}
latencies.sort((a, b) => a - b);
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
const result = {
  streams: STREAMS,
  changes: CHANGES,
  p50Ms: Number(at(0.5).toFixed(1)),
  p99Ms: Number(at(0.99).toFixed(1)),
  maxMs: Number((latencies.at(-1) ?? 0).toFixed(1)),
  bytesPerStreamPerChange: Math.round(liveBytes / STREAMS / CHANGES),
  heapPerStreamBytes: gc ? Math.round(heapPerStream) : 'run with node --expose-gc',
};
process.stdout.write(`${JSON.stringify(result)}\n`);
for (const request of requests) request.destroy();
await app.stop();
await client.quit();
await redis.close();
