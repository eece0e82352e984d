// The coalescing ceiling (docs/performance.md): the naive ceiling (ceiling-naive.ts), except that the frames that
// arrive in one event-loop turn are concatenated and written once per socket (one write, one syscall
// and one chunk per turn instead of one per event). Started by bench/systems.ts like the naive one.
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
  let pending: Buffer[] = [];
  const flush = () => {
    const batch = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
    pending = [];
    for (const response of streams) response.write(batch);
  };
  const subscriber = createClient({ url: REDIS_URL });
  await subscriber.connect();
  await subscriber.sSubscribe(CHANNELS.split(','), (message) => {
    const { id, type } = JSON.parse(message) as { id: string; type: string };
    if (pending.length === 0) setImmediate(flush);
    pending.push(Buffer.from(`id: ${id}\nevent: ${type}\ndata: ${message}\n\n`));
  });
  server.listen(Number(PORT), '127.0.0.1', () => process.send!('ready'));
}
