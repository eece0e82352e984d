// The soak's raw-socket client (soak-client.ts) against a scripted SSE server: it must echo the frame id
// verbatim as Last-Event-ID (an opaque cursor such as `main:<id>`), reconnect after the server's `retry:`,
// and count loss, duplicates, id regressions and resets from the envelopes, or the soak's "zero loss"
// could pass a run that lost events.
import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HISTOGRAM_SLOTS, SharedHistogram } from '../../bench/histogram.ts';
import { until } from '../helpers/sse-client.ts';
import { LATENCY_OFFSET, SLOT, SoakClient } from './soak-client.ts';

const frame = (cursor: string, id: string, value: number) =>
  `id: ${cursor}\nevent: metric\ndata: ${JSON.stringify({ id, ts: Date.now(), type: 'metric', name: 'bench.value', value })}\n\n`;

describe('soak client: opaque resume cursor, loss and duplicate accounting', function () {
  let server: http.Server | undefined;
  let client: SoakClient | undefined;
  afterEach(async function () {
    client?.close();
    client = undefined;
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });

  it('echoes `main:<id>` as Last-Event-ID after the server ends a stream, and counts a gap, a duplicate and a reset', async function () {
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
        // Warm-up (value 0) moves the cursor only; then 1 and 2; then the stream ends (a reload).
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
    const counters = new Int32Array(new SharedArrayBuffer((LATENCY_OFFSET + HISTOGRAM_SLOTS) * 4));
    client = new SoakClient(
      { host: '127.0.0.1', port, counters, latency: new SharedHistogram(counters, LATENCY_OFFSET) },
      'pulseboard.sid=abc',
      '127.0.0.1',
    );
    await client.connect();
    await until(() => Atomics.load(counters, SLOT.resets) === 1, 5000, 'the reset on the resumed stream');

    expect(requests).to.deep.equal([
      { cookie: 'pulseboard.sid=abc' },
      { cookie: 'pulseboard.sid=abc', lastEventId: 'main:3-0' },
    ]);
    expect({
      lastValue: client.lastValue,
      gaps: client.gaps,
      duplicates: client.duplicates,
      idRegressions: client.idRegressions,
      resets: client.resets,
      opens: client.opens,
    }).to.deep.equal({ lastValue: 4, gaps: 1, duplicates: 1, idRegressions: 1, resets: 1, opens: 2 });
    expect(Atomics.load(counters, SLOT.deliveries)).to.equal(4);
    expect(Atomics.load(counters, SLOT.reconnects)).to.equal(1);
  });
});
