// The naive ceiling (docs/performance.md): the least a Node fan-out server can do. A node cluster of WORKERS
// processes, one Redis subscriber per worker, each event encoded once and the same Buffer written to
// every open response. No auth, no replay, no topics, no slow-consumer limit: a reference, not a server.
// Started by bench/systems.ts; prints one JSON line with the worker pids once every worker is ready.
import cluster from 'node:cluster';
import http from 'node:http';
import { createClient } from 'redis';
import { installMemoryReport } from '../server/memory-report.ts';

// CHANNELS: the boards' shard channels the sequencing script SPUBLISHes on (docs/design.md, "Redis keys").
const { PORT = '0', REDIS_URL, CHANNELS = '{pulseboard}:live', WORKERS = '2' } = process.env;

if (cluster.isPrimary) {
  const pids: number[] = [];
  for (let index = 0; index < Number(WORKERS); index += 1) {
    const worker = cluster.fork();
    worker.on('message', () => {
      pids.push(worker.process.pid!);
      if (pids.length === Number(WORKERS)) process.stdout.write(`${JSON.stringify({ ready: pids })}\n`);
    });
  }
} else {
  // The bench's memory reading after a forced GC, as pulseboard's workers give it.
  installMemoryReport(process.env.BENCH_MEMORY_DIR);
  const streams = new Set<http.ServerResponse>();
  const server = http.createServer((request, response) => {
    if (request.url !== '/events') return void response.writeHead(200).end('ok');
    request.socket.setNoDelay(true);
    response.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    response.write(': ok\n\n');
    streams.add(response);
    response.on('close', () => streams.delete(response));
  });
  const subscriber = createClient({ url: REDIS_URL });
  await subscriber.connect();
  await subscriber.sSubscribe(CHANNELS.split(','), (message) => {
    const { id, type } = JSON.parse(message) as { id: string; type: string };
    const frame = Buffer.from(`id: ${id}\nevent: ${type}\ndata: ${message}\n\n`);
    for (const response of streams) response.write(frame);
  });
  server.listen(Number(PORT), '127.0.0.1', () => process.send!('ready'));
}
