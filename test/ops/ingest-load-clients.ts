// Load driver run as its own process by ingest-load.test.ts: holds many SSE streams open against the
// workers (round robin) and counts what they receive, so the workers are busy fanning out while the test
// measures ingest. Configured by environment: LOAD_URLS (comma list), LOAD_COOKIE, LOAD_CLIENTS,
// LOAD_TOPICS. Reports `{ open, frames, closed }` to the parent over IPC every second.
import http from 'node:http';

const urls = (process.env.LOAD_URLS ?? '').split(',').filter(Boolean);
const cookie = process.env.LOAD_COOKIE ?? '';
const clients = Number(process.env.LOAD_CLIENTS ?? '100');
const topics = process.env.LOAD_TOPICS ?? '*';
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

let open = 0;
let frames = 0;
let closed = 0;
/** Delivery latency samples (ms, sequencing time by Redis' clock on this host to arrival), 1 in 50 frames. */
const latencies: number[] = [];
const requests: http.ClientRequest[] = [];

function connect(index: number): void {
  const url = new URL(`/events?topics=${encodeURIComponent(topics)}`, urls[index % urls.length]);
  const request = http.get(
    url,
    { agent, headers: { Cookie: cookie, Accept: 'text/event-stream' } },
    (response) => {
      if (response.statusCode !== 200) {
        closed += 1;
        response.resume();
        return;
      }
      open += 1;
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        // Every event frame has one `event:` line followed by its `data:` line (a chunk boundary between
        // them, rare, undercounts by one).
        for (let at = chunk.indexOf('\ndata: '); at !== -1; at = chunk.indexOf('\ndata: ', at + 1)) {
          frames += 1;
          if (frames % 50 !== 0) continue;
          const ts = /"ts":(\d+)/.exec(chunk.slice(at, at + 400));
          if (ts) latencies.push(Date.now() - Number(ts[1]));
        }
      });
      response.on('close', () => {
        open -= 1;
        closed += 1;
      });
    },
  );
  request.on('error', () => undefined);
  requests.push(request);
}

for (let index = 0; index < clients; index += 1) {
  connect(index);
  if (index % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 20));
}
const report = setInterval(() => process.send?.({ open, frames, closed }), 1000);
process.on('message', (message) => {
  if (message === 'reset') latencies.length = 0;
  if (message !== 'stop') return;
  clearInterval(report);
  process.send?.({ open, frames, closed, latencies }, () => process.exit(0));
});
