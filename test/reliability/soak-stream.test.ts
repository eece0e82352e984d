// The soak's streams (soak-thread.ts: the bench's raw-socket client, bench/sse-client.ts) against a
// scripted SSE server: a stream must echo the frame id verbatim as Last-Event-ID (an opaque cursor such as
// `main:<id>`), reconnect after the server's `retry:`, and the accounting must see a lost value, a
// duplicate, an id regression and a reset, or the soak's "zero loss" could pass a run that lost events.
import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import { DELIVERIES, RECONNECTS, SLOT_COUNT } from '../../bench/driver-layout.ts';
import type { SoakThreadCommand, SoakThreadData, SoakThreadReply } from './soak-thread.ts';

const THREAD_ENTRY = new URL('./soak-thread.ts', import.meta.url).href;

const frame = (cursor: string, id: string, value: number) =>
  `id: ${cursor}\nevent: metric\ndata: ${JSON.stringify({ id, ts: Date.now(), type: 'metric', name: 'bench.value', value })}\n\n`;

function ask(thread: Worker, command: SoakThreadCommand): Promise<SoakThreadReply> {
  return new Promise((resolve, reject) => {
    thread.once('error', reject);
    thread.once('message', (reply: SoakThreadReply) => {
      thread.off('error', reject);
      resolve(reply);
    });
    thread.postMessage(command);
  });
}

describe('soak streams: opaque resume cursor, loss and duplicate accounting', function () {
  let server: http.Server | undefined;
  let thread: Worker | undefined;
  afterEach(async function () {
    if (thread) {
      await ask(thread, { type: 'close' }).catch(() => undefined);
      await thread.terminate();
      thread = undefined;
    }
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });

  it('echoes `main:<id>` as Last-Event-ID after the server ends a stream, and counts a loss, a duplicate, a regression and a reset', async function () {
    const requests: { cookie?: string; lastEventId?: string }[] = [];
    server = http.createServer((request, response) => {
      requests.push({
        ...(request.headers.cookie === undefined ? {} : { cookie: request.headers.cookie }),
        ...(typeof request.headers['last-event-id'] === 'string'
          ? { lastEventId: request.headers['last-event-id'] }
          : {}),
      });
      response.writeHead(200, { 'Content-Type': 'text/event-stream', Connection: 'close' });
      if (requests.length === 1) {
        // Warm-up (value 0) moves the cursor only; then 1 and 2 (the second cut across two writes); then
        // the stream ends (a reload).
        response.write('retry: 50\n\n: pulseboard stream\n\n');
        response.write(frame('main:1-0', '1-0', 0));
        response.write(frame('main:2-0', '2-0', 1) + frame('main:3-0', '3-0', 2).slice(0, 20));
        setTimeout(() => response.end(frame('main:3-0', '3-0', 2).slice(20)), 20);
      } else {
        // The resumed stream repeats 2 (a duplicate, its envelope id not after the last), skips 3, sends 4,
        // then a reset.
        response.write(frame('main:3-0', '3-0', 2));
        response.write(frame('main:5-0', '5-0', 4));
        response.write('event: reset\ndata: {"reason":"history-trimmed"}\n\n');
      }
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const buffer = new SharedArrayBuffer(SLOT_COUNT * Int32Array.BYTES_PER_ELEMENT);
    const counters = new Int32Array(buffer);
    const data: SoakThreadData = { buffer, host: '127.0.0.1', port, maxSeq: 100, epochMs: Date.now() };
    // As soak.ts starts it: tsx's loader registered inside the thread.
    const source = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(THREAD_ENTRY)}); });`;
    thread = new Worker(source, { eval: true, workerData: data });
    await new Promise((resolve, reject) => thread!.once('message', resolve).once('error', reject));
    const opened = await ask(thread, {
      type: 'open',
      cookie: 'pulseboard.sid=abc',
      localAddresses: ['127.0.0.1'],
      concurrency: 1,
    });
    expect(opened.failures).to.equal(0);
    let totals: SoakThreadReply['totals'];
    for (const deadline = Date.now() + 5000; totals?.resets !== 1;) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the reset on the resumed stream');
      await new Promise((resolve) => setTimeout(resolve, 20));
      totals = (await ask(thread, { type: 'report', published: 4 })).totals;
    }

    expect(requests).to.deep.equal([
      { cookie: 'pulseboard.sid=abc' },
      { cookie: 'pulseboard.sid=abc', lastEventId: 'main:3-0' },
    ]);
    expect(totals).to.deep.include({
      clients: 1,
      lost: 1,
      clientsWithLoss: 1,
      duplicates: 1,
      idRegressions: 1,
      resets: 1,
      behind: 1,
      minReceived: 3,
    });
    // Values 1, 2, 2 (again) and 4: the duplicate is a delivery too; warm-up 0 is not.
    expect(Atomics.load(counters, DELIVERIES)).to.equal(4);
    expect(Atomics.load(counters, RECONNECTS)).to.equal(1);
  });
});
