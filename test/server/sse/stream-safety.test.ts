// Black-box guards found missing by a mutation audit (docs/security.md, "Hardening"): each test
// fails when the behaviour it names is broken, through HTTP, Redis and real sockets only.
import net from 'node:net';
import { expect } from 'chai';
import { authNames, redisNames } from '../../../shared/keys.ts';
import { createPublisher } from '../../../shared/publisher.ts';
import type { TestApp } from '../../helpers/app.ts';
import type { TestSession } from '../../helpers/auth.ts';
import { EventSource } from 'eventsource';
import { sleep, until } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { openRawStream } from '../../helpers/raw-stream.ts';

/** The app's slow-consumer close count, from its own /metrics. */
async function slowCloses(app: TestApp): Promise<number> {
  const text = await (await fetch(`${app.url}/metrics`)).text();
  return Number(/^pulseboard_slow_consumer_closes_total (\d+)/m.exec(text)?.[1] ?? NaN);
}

/** A client that asks to replay from the start and then reads nothing. */
async function stalledReplay(app: TestApp, session: TestSession): Promise<net.Socket> {
  const socket = net.connect(app.port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.on('error', () => undefined);
  const headers = Object.entries(session.headers).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.write(`GET /events?since=0-0 HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers.join('')}\r\n`);
  socket.pause();
  return socket;
}

describe('stream safety', function () {
  this.timeout(90_000);
  const bed = useTestBed();
  const sockets: net.Socket[] = [];
  afterEach(function () {
    for (const socket of sockets.splice(0)) socket.destroy();
  });

  it('a forged envelope on the events channel injects nothing into any stream', async function () {
    const app = await bed.startApp();
    const session = await bed.login(app.url);
    const raw = await openRawStream(`${app.url}/events`, { headers: session.headers }).opened;
    await raw.waitForText(/: pulseboard stream/);
    const names = redisNames(bed.prefix);
    const base = { type: 'status', service: 'api', state: 'ok', ts: Date.now() };
    const forged = [
      { ...base, id: '99999999999990-0\n\ndata: injected' },
      { ...base, id: '99999999999991-0\nevent: reset' },
      { ...base, id: '99999999999992-0\r\ndata: injected' },
      { ...base, id: '99999999999993-0\u0000data: injected' },
      { ...base, id: '99999999999994-0', service: 'api\ndata: injected' },
      { ...base, id: '99999999999995-0', type: 'reset' },
      { ...base, id: '99999999999996-0', service: '<img src=x onerror=alert(1)>' },
    ];
    for (const envelope of forged) await bed.client.publish(names.eventsChannel, JSON.stringify(envelope));
    await bed.client.publish(names.eventsChannel, 'not json\n\ndata: injected');
    const [id] = await createPublisher(bed.client, { prefix: bed.prefix }).publish(base);
    await raw.waitForText(new RegExp(`id: main:${id}\\n`));
    await sleep(100);
    raw.close();
    const text = raw.text();
    expect(text).to.not.include('injected');
    expect(text).to.not.include('reset');
    expect(text).to.not.include('<img');
    // Exactly one event reached the stream: the real one.
    expect(text.match(/^id: /gm)).to.deep.equal(['id: ']);
    expect(text.match(/^data: /gm)).to.have.length(1);
  });

  it('the periodic session check closes a stream whose user changed stamp, with no control message', async function () {
    const app = await bed.startApp({ SESSION_CHECK_MS: '200' });
    const session = await bed.login(app.url, { username: 'alice' });
    const stream = bed.openStream(`${app.url}/events`, { headers: session.headers });
    await stream.waitForOpen();
    // What `pulseboard user passwd` does, minus its control message (as if it were lost).
    const key = authNames(bed.prefix).users;
    const record = JSON.parse((await bed.client.hGet(key, 'alice')) ?? '{}') as Record<string, unknown>;
    await bed.client.hSet(key, 'alice', JSON.stringify({ ...record, stamp: 'changed-behind-its-back' }));
    const changedAt = Date.now();
    await until(() => app.hub.size === 0 && stream.errors > 0, 3000, 'the stream to close');
    expect(Date.now() - changedAt).to.be.below(2000);
    await until(() => stream.source.readyState === EventSource.CLOSED, 10_000, 'the reconnect refused');
  });

  it('live events held during a stalled replay are bounded: the client is closed as slow at once', async function () {
    const app = await bed.startApp({ SSE_MAX_BUFFER_BYTES: String(64 * 1024) });
    const session = await bed.login(app.url);
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    // ~12 KB per frame (control characters are 6 bytes each in JSON), ~14 MB of log: more than the
    // kernel's socket buffers hold, so the replay waits for a client that never reads.
    const text = '\u0001'.repeat(2000);
    for (let index = 0; index < 1200; index += 1) {
      await publisher.publish({ type: 'event', level: 'info', title: `old ${index}`, text });
    }
    sockets.push(await stalledReplay(app, session));
    await until(() => app.hub.size === 1, 5000, 'the stream registered');
    await sleep(500); // the replay fills the buffers and waits for room
    expect(await slowCloses(app)).to.equal(0);
    const liveAt = Date.now();
    for (let index = 0; index < 20; index += 1) {
      await publisher.publish({ type: 'event', level: 'info', title: `live ${index}`, text });
    }
    await until(() => app.hub.size === 0, 5000, 'the stalled client to be closed');
    expect(Date.now() - liveAt).to.be.below(5000); // not the 30 s stall timeout
    expect(await slowCloses(app)).to.equal(1);
  });

  it('no duplicate on resume: live events held during a replay that also reads them arrive once (deterministic)', async function () {
    const app = await bed.startApp();
    const session = await bed.login(app.url);
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    const text = '\u0001'.repeat(2000);
    for (let index = 0; index < 1200; index += 1) {
      await publisher.publish({ type: 'event', level: 'info', title: `old ${index}`, text });
    }
    // The replay stalls on a client that is not reading yet; live events published now are both held
    // for it and appended to the log that the replay will still read: every one of them is offered twice.
    const socket = await stalledReplay(app, session);
    sockets.push(socket);
    await until(() => app.hub.size === 1, 5000, 'the stream registered');
    await sleep(500);
    const live: string[] = [];
    for (let index = 0; index < 10; index += 1) {
      live.push(...(await publisher.publish({ type: 'event', level: 'info', title: `live ${index}` })));
    }
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.resume();
    const lastLine = `id: main:${live.at(-1)}\n`;
    await until(() => received.includes(lastLine), 30_000, 'the last live event');
    await sleep(300);
    const ids = [...received.matchAll(/^id: main:(\S+)$/gm)].map((match) => match[1]);
    const expected = ((await bed.client.xRange(redisNames(bed.prefix).log, '-', '+')) ?? []).map(
      (entry) => entry.id,
    );
    expect(ids.length - new Set(ids).size, 'duplicates').to.equal(0);
    expect(ids).to.deep.equal(expected);
  });

  it('a replay cut by a Redis error closes the stream; resuming from its last id then misses nothing', async function () {
    const app = await bed.startApp();
    const session = await bed.login(app.url);
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    const text = '\u0001'.repeat(2000);
    for (let index = 0; index < 1200; index += 1) {
      await publisher.publish({ type: 'event', level: 'info', title: `old ${index}`, text });
    }
    const log = redisNames(bed.prefix).log;
    const expected = ((await bed.client.xRange(log, '-', '+')) ?? []).map((entry) => entry.id);
    // The replay's first batch fills the buffers of a client that is not reading yet.
    const socket = await stalledReplay(app, session);
    sockets.push(socket);
    await until(() => app.hub.size === 1, 5000, 'the stream registered');
    await sleep(500);
    // Its next XRANGE meets a Redis error (WRONGTYPE): the log is moved aside for a moment.
    await bed.client.rename(log, `${log}:aside`);
    await bed.client.set(log, 'not a stream');
    let received = '';
    let ended = false;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('end', () => (ended = true));
    socket.on('close', () => (ended = true));
    socket.resume();
    await until(() => ended, 10_000, 'the server to end the stream');
    await bed.client.del(log);
    await bed.client.rename(`${log}:aside`, log);
    const first = [...received.matchAll(/^id: main:(\S+)$/gm)].map((match) => match[1]!);
    expect(first.length).to.be.within(1, expected.length - 1);
    expect(first).to.deep.equal(expected.slice(0, first.length)); // a gap-free prefix, nothing skipped
    // What EventSource does next: reconnect with Last-Event-ID, and get exactly the rest.
    const resumed = await openRawStream(`${app.url}/events`, {
      headers: session.headers,
      lastEventId: first.at(-1)!,
    }).opened;
    await resumed.waitForText(new RegExp(`id: main:${expected.at(-1)}\n`), 30_000);
    resumed.close();
    const rest = [...resumed.text().matchAll(/^id: main:(\S+)$/gm)].map((match) => match[1]!);
    expect([...first, ...rest]).to.deep.equal(expected);
  });

  it('a replay to a client that reads nothing ends at the stall timeout (30 s)', async function () {
    const app = await bed.startApp({ SSE_MAX_BUFFER_BYTES: String(64 * 1024) });
    const session = await bed.login(app.url);
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    const text = '\u0001'.repeat(2000);
    for (let index = 0; index < 1200; index += 1) {
      await publisher.publish({ type: 'event', level: 'info', title: `old ${index}`, text });
    }
    const startedAt = Date.now();
    sockets.push(await stalledReplay(app, session));
    await until(() => app.hub.size === 1, 5000, 'the stream registered');
    await until(() => app.hub.size === 0, 45_000, 'the stall timeout to close the stream');
    expect(Date.now() - startedAt).to.be.within(25_000, 45_000);
    expect(await slowCloses(app)).to.equal(1);
  });
});

describe('stream safety when Redis loses its data', function () {
  this.timeout(60_000);
  // A server of its own: these tests restart Redis and exhaust its clients (test/helpers/redis-server.ts).
  const bed = useTestBed({ tolerateRedisErrors: true, redis: { own: true } });

  it('a worker whose gap falls into a trimmed log sends reset, so clients refetch instead of missing events', async function () {
    const app = await bed.startApp({ HISTORY_MAX: '100' });
    const session = await bed.login(app.url);
    const stream = bed.openStream(`${app.url}/events`, { headers: session.headers });
    await stream.waitForOpen();
    const publisher = createPublisher(bed.client, { prefix: bed.prefix, historyMax: 100 });
    await publisher.publish({ type: 'status', service: 'api', state: 'ok' });
    await stream.waitFor((events) => events.length === 1);
    // The worker's subscriber is cut and cannot come back (Redis refuses new connections) while far more
    // events than the log keeps are published: its gap starts before the oldest entry left.
    await bed.client.configSet('maxclients', '1');
    try {
      await bed.client.clientKill({ filter: 'TYPE', type: 'pubsub' });
      await until(() => !app.health.report().checks.subscriber.startsWith('ok'), 5000, 'the subscriber down');
      for (let index = 0; index < 20; index += 1) {
        const points = Array.from({ length: 50 }, (_, point) => ({
          name: 'gap.metric',
          value: index * 50 + point,
        }));
        await publisher.publish({ type: 'metrics', points });
      }
    } finally {
      await bed.client.configSet('maxclients', '10000');
    }
    await until(() => stream.resets > 0, 15_000, 'a reset on the open stream');
    expect(stream.resets).to.be.at.least(1);
  });

  it('a worker whose Redis came back empty sends reset, so clients refetch instead of missing events', async function () {
    const app = await bed.startApp();
    const session = await bed.login(app.url);
    const stream = bed.openStream(`${app.url}/events`, { headers: session.headers });
    await stream.waitForOpen();
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    await publisher.publish({ type: 'status', service: 'api', state: 'ok' });
    await stream.waitFor((events) => events.length === 1);
    await bed.redis.stop(); // SIGKILL, no persistence: it comes back with nothing
    await bed.redis.start();
    await until(() => stream.resets > 0, 15_000, 'a reset on the open stream');
    expect(stream.resets).to.be.at.least(1);
    // Leave the shared client connected again, so the suite's `after` can QUIT it.
    await until(() => bed.client.isReady, 15_000, 'the test client back');
    await bed.client.ping();
  });
});
