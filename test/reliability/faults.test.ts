// Faults under load (docs/reliability.md, "Tests"): real faults while events
// flow to real EventSource clients, each checked against the event log in Redis: every acknowledged id is
// in the log, and every client got exactly the log's ids, once each, in order, with no reset.
// A worker SIGKILLed under PM2 is test/ops/pm2-reload.test.ts (same checks).
import { expect } from 'chai';
import type net from 'node:net';
import { createPublisher } from '../../shared/publisher.ts';
import { sleep, until } from '../helpers/sse-client.ts';
import { useTestBed } from '../helpers/test-bed.ts';
import {
  expectEveryClientSawExactly,
  logIds,
  openClients,
  publishSteadily,
  type RecordingClient,
} from '../ops/traffic.ts';
import { connectRaw, mb, publishUntilStopped } from './load-probes.ts';

// One session opens every stream of a test (the default quota is a handful per session).
const STALL_EVENTS = 2500;
const STREAMS = { MAX_STREAMS_PER_SESSION: '200' };

describe('faults under load', function () {
  this.timeout(180_000);
  const bed = useTestBed({ tolerateRedisErrors: true, redis: { appendonly: true } });
  let clients: RecordingClient[] = [];
  let sockets: net.Socket[] = [];
  afterEach(function () {
    for (const client of clients) client.close();
    clients = [];
    for (const socket of sockets) socket.destroy();
    sockets = [];
  });

  it('Redis shut down and restarted (appendonly) while events flow: nothing acknowledged is lost', async function () {
    const app = await bed.startApp(STREAMS);
    const { headers } = await bed.login(app.url);
    clients = await openClients(10, `${app.url}/events`, headers);

    const publishing = publishUntilStopped(bed.client, bed.prefix, 20);
    await sleep(1000);
    const shutdownAt = performance.now();
    await bed.redis.shutdown();
    await sleep(1000);
    await bed.redis.start();
    const downMs = performance.now() - shutdownAt;
    await sleep(2000);
    const { ids: published, failures } = await publishing.stop();

    const expected = await logIds(bed.client, bed.prefix, published[0]!, published.at(-1)!);
    // Every acknowledged id survived the restart. A publish whose answer the shutdown cut may be in the
    // log without an acknowledgement: the clients must then have it too, so they are checked on the log.
    expect(published.filter((id) => !expected.includes(id))).to.deep.equal([]);
    await expectEveryClientSawExactly(clients, expected);
    console.log(
      `      redis-cli shutdown + restart on the same port and dir, down ${Math.round(downMs)} ms: ` +
        `${published.length} events acknowledged (${failures} publishes failed), ${expected.length} in the ` +
        `log, all 10 clients got all ${expected.length}, none twice, no reset`,
    );
  });

  it('the subscriber connection killed 10 times (CLIENT KILL TYPE pubsub) under load: nothing lost', async function () {
    const app = await bed.startApp(STREAMS);
    const { headers } = await bed.login(app.url);
    clients = await openClients(10, `${app.url}/events`, headers);

    const publishing = publishSteadily(bed.client, bed.prefix, 50);
    const killed: number[] = [];
    for (let round = 0; round < 10; round += 1) {
      await sleep(300);
      // Kill only once the worker has subscribed again, so every round is a real kill.
      await until(() => app.subscriber.isReady, 10_000, 'the worker to re-subscribe after the last kill');
      killed.push(Number(await bed.client.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub'])));
    }
    await sleep(1500);
    const published = await publishing.stop();

    const expected = await logIds(bed.client, bed.prefix, published[0]!, published.at(-1)!);
    expect(expected).to.deep.equal(published);
    await expectEveryClientSawExactly(clients, expected);
    expect(
      killed.every((count) => count >= 1),
      `kills: ${killed.join(', ')}`,
    ).to.equal(true);
    console.log(
      `      ${killed.length} kills of the subscriber (${killed.join(', ')} connections each) at 50 events/s: ` +
        `${published.length} events, all 10 clients got all of them, none twice, no reset`,
    );
  });

  it('100 stalled readers while others stream: closed as slow consumers, others get everything, memory bounded', async function () {
    const app = await bed.startApp({ ...STREAMS, SSE_MAX_BUFFER_BYTES: String(64 * 1024) });
    const session = await bed.login(app.url);
    clients = await openClients(5, `${app.url}/events`, session.headers);
    const port = Number(new URL(app.url).port);
    const memoryBefore = process.memoryUsage();

    // A stalled reader asks for a stream and then never reads a byte.
    for (let index = 0; index < 100; index += 1) {
      const socket = await connectRaw(port, '127.0.0.3');
      sockets.push(socket);
      socket.on('error', () => undefined);
      socket.pause();
      socket.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${session.headers.Cookie}\r\n\r\n`);
    }
    await until(() => app.hub.size === 105, 15_000, '105 open streams');
    const slowBefore = (await app.metrics.slowConsumerCloses.get()).values[0]?.value ?? 0;

    // Log events of ~2.3 KB each: about 5.8 MB per stream, more than a loopback socket's kernel buffers
    // hold (send buffer up to 4 MB here), so the worker's own buffer must fill.
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    const published: string[] = [];
    let peakRss = 0;
    for (let index = 0; index < STALL_EVENTS; index += 1) {
      const event = { type: 'event', level: 'info', title: `stall ${index}`, text: 'x'.repeat(2000) };
      published.push(...(await publisher.publish(event)));
      if (index % 50 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }
    await until(() => app.hub.size === 5, 30_000, 'the stalled readers to be closed').catch(
      (error: unknown) => {
        throw new Error(`${String(error)}; ${app.hub.size} streams still open`);
      },
    );
    const slowAfter = (await app.metrics.slowConsumerCloses.get()).values[0]?.value ?? 0;
    await expectEveryClientSawExactly(clients, published, 30_000);
    const memoryAfter = process.memoryUsage();
    peakRss = Math.max(peakRss, memoryAfter.rss);

    console.log(
      `      100 stalled readers + 5 live clients, ${STALL_EVENTS} events of 2.3 KB (SSE_MAX_BUFFER_BYTES 64 KiB): ` +
        `${slowAfter - slowBefore} closed as slow consumers; the 5 got all ${published.length}, in order; worker process ` +
        `RSS ${mb(memoryBefore.rss)} → peak ${mb(peakRss)} → ${mb(memoryAfter.rss)}, heap ` +
        `${mb(memoryBefore.heapUsed)} → ${mb(memoryAfter.heapUsed)}`,
    );
    expect(slowAfter - slowBefore).to.equal(100);
    // Bounded: what the stalled streams may hold (100 × 64 KiB ≈ 6.4 MB) plus the test's own clients;
    // unbounded buffering would hold up to 100 × 5.8 MB = 580 MB.
    expect(peakRss - memoryBefore.rss).to.be.below(80 * 1024 * 1024);
  });
});
