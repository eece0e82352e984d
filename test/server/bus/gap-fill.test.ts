import { expect } from 'chai';
import { createClient } from 'redis';
import { boardKeys, redisNames } from '../../../shared/keys.ts';
import { createPublisher } from '../../../shared/publisher.ts';
import { BoardStore } from '../../../server/auth/boards.ts';
import type { RedisClient } from '../../../server/redis.ts';
import { startTestApp, stopAll, uniquePrefix, type TestApp } from '../../helpers/app.ts';
import { login } from '../../helpers/auth.ts';
import { startTestRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { openStream, type RecordedStream } from '../../helpers/sse-client.ts';
import { sleep } from '../sse/stream-helpers.ts';

const RATE_PER_SECOND = 200;
const DURATION_MS = 4000;
const KILL_AT_MS = [500, 1200, 2000, 2700, 3400];

describe('gap fill after the subscriber connection drops', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let apps: TestApp[] = [];
  let streams: RecordedStream[] = [];
  let publisherClient: RedisClient;
  let admin: ReturnType<typeof createClient>;

  before(async function () {
    redis = await startTestRedis();
    publisherClient = createClient({ url: redis.url });
    admin = createClient({ url: redis.url });
    await Promise.all([publisherClient.connect(), admin.connect()]);
  });
  after(async function () {
    await Promise.all([publisherClient.quit(), admin.quit()]);
    await redis.close();
  });
  afterEach(async function () {
    for (const stream of streams) stream.close();
    streams = [];
    await stopAll(apps);
    apps = [];
  });

  it('delivers every event exactly once and in order to every client while CLIENT KILL TYPE pubsub cuts the workers off, at 200 events/s', async function () {
    const prefix = uniquePrefix();
    apps = await Promise.all([
      startTestApp(redis.url, { PULSEBOARD_PREFIX: prefix }),
      startTestApp(redis.url, { PULSEBOARD_PREFIX: prefix }),
    ]);
    const sessions = await Promise.all(apps.map((app) => login(app.url, { redisUrl: redis.url, prefix })));
    const urls = apps.flatMap((app, index) => [
      { app: index, url: `${app.url}/events` },
      { app: index, url: `${app.url}/events` },
      { app: index, url: `${app.url}/events?topics=status:*` },
    ]);
    streams = urls.map(({ app, url }) => openStream(url, { headers: sessions[app]!.headers }));
    await Promise.all(streams.map((stream) => stream.waitForOpen()));

    const publisher = createPublisher(publisherClient, { prefix });
    const started = Date.now();
    const kills = (async () => {
      let killed = 0;
      for (const at of KILL_AT_MS) {
        await sleep(Math.max(0, started + at - Date.now()));
        killed += Number(await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']));
      }
      return killed;
    })();
    const total = (RATE_PER_SECOND * DURATION_MS) / 1000;
    for (let index = 0; index < total; index += 1) {
      await sleep(Math.max(0, started + (index * 1000) / RATE_PER_SECOND - Date.now()));
      const input =
        index % 4 === 0
          ? { type: 'status', service: `svc-${index % 5}`, state: 'ok', message: `#${index}` }
          : { type: 'metric', name: 'load', value: index };
      await publisher.publish(input);
    }
    // Both workers' subscribers were cut each time.
    expect(await kills).to.equal(KILL_AT_MS.length * apps.length);

    const log = (await publisherClient.xRange(`{${prefix}}:log`, '-', '+')) ?? [];
    expect(log).to.have.length(total);
    const allIds = log.map((entry) => entry.id);
    const statusIds = log
      .filter((entry) => entry.message.e?.includes('"type":"status"'))
      .map((entry) => entry.id);
    for (const [index, stream] of streams.entries()) {
      const expected = urls[index]!.url.includes('topics') ? statusIds : allIds;
      await stream.waitFor(
        (events) => events.length >= expected.length,
        10_000,
        `stream ${index} to catch up`,
      );
    }
    await sleep(300);
    for (const [index, stream] of streams.entries()) {
      const expected = urls[index]!.url.includes('topics') ? statusIds : allIds;
      expect(
        stream.events.map((event) => event.id),
        `stream ${index}`,
      ).to.deep.equal(expected);
      expect(stream.opens, `stream ${index} never had to reconnect`).to.equal(1);
    }
    for (const app of apps) {
      const gapFills = (await app.metrics.replays.get()).values.find((value) => value.labels.kind === 'gap');
      expect(gapFills?.value).to.equal(KILL_AT_MS.length);
      expect(app.health.report().checks.subscriber).to.equal('ok');
    }
  });

  it('replays each board of its streams after its own position: two boards, every event once and in order per board', async function () {
    const prefix = uniquePrefix();
    const boards = new BoardStore(publisherClient, redisNames(prefix));
    await boards.add('payments');
    await boards.add('edge');
    const app = await startTestApp(redis.url, { PULSEBOARD_PREFIX: prefix });
    apps = [app];
    const session = await login(app.url, { redisUrl: redis.url, prefix, boards: ['payments', 'edge'] });
    streams = [`${app.url}/events?boards=edge,payments`, `${app.url}/events?boards=payments`].map((url) =>
      openStream(url, { headers: session.headers }),
    );
    await Promise.all(streams.map((stream) => stream.waitForOpen()));
    const publisher = createPublisher(publisherClient, { prefix });
    const started = Date.now();
    const kills = (async () => {
      for (const at of [300, 900, 1500]) {
        await sleep(Math.max(0, started + at - Date.now()));
        await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
      }
    })();
    for (let index = 0; index < 400; index += 1) {
      await sleep(Math.max(0, started + index * 5 - Date.now()));
      await publisher.publish({
        type: 'metric',
        board: index % 2 ? 'edge' : 'payments',
        name: 'load',
        value: index,
      });
    }
    await kills;
    const idsOf = async (board: string) =>
      ((await publisherClient.xRange(boardKeys(prefix, board).log, '-', '+')) ?? []).map((entry) => entry.id);
    const expected = { payments: await idsOf('payments'), edge: await idsOf('edge') };
    const wanted = [expected.payments.length + expected.edge.length, expected.payments.length];
    for (const [index, stream] of streams.entries()) {
      await stream.waitFor(
        (events) => events.length >= wanted[index]!,
        10_000,
        `stream ${index} to catch up`,
      );
    }
    await sleep(300);
    for (const [index, stream] of streams.entries()) {
      for (const board of index === 0 ? (['payments', 'edge'] as const) : (['payments'] as const)) {
        const received = stream.events.filter((event) => event.board === board).map((event) => event.id);
        expect(received, `stream ${index}, board ${board}`).to.deep.equal(expected[board]);
      }
      expect(stream.events.length, `stream ${index}`).to.equal(wanted[index]);
      expect(stream.opens, `stream ${index} never had to reconnect`).to.equal(1);
    }
  });
});
