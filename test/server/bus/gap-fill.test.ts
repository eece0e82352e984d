import { expect } from 'chai';
import { boardKeys, redisNames } from '../../../shared/keys.ts';
import { createPublisher } from '../../../shared/publisher.ts';
import { BoardStore } from '../../../server/auth/boards.ts';
import type { RedisClient } from '../../../server/redis.ts';
import { sleep } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';

const RATE_PER_SECOND = 200;
const DURATION_MS = 4000;
const KILL_AT_MS = [500, 1200, 2000, 2700, 3400];

describe('gap fill after the subscriber connection drops', function () {
  this.timeout(60_000);
  const bed = useTestBed();
  /** A second connection for CLIENT KILL, so the kills never wait behind the publisher's commands. */
  let admin: RedisClient;

  before(async function () {
    admin = await bed.connect();
  });

  it('delivers every event exactly once and in order to every client while CLIENT KILL TYPE pubsub cuts the workers off, at 200 events/s', async function () {
    const { prefix } = bed;
    const apps = await Promise.all([bed.startApp(), bed.startApp()]);
    const sessions = await Promise.all(apps.map((app) => bed.login(app.url)));
    const urls = apps.flatMap((app, index) => [
      { app: index, url: `${app.url}/events` },
      { app: index, url: `${app.url}/events` },
      { app: index, url: `${app.url}/events?topics=status:*` },
    ]);
    const streams = urls.map(({ app, url }) => bed.openStream(url, { headers: sessions[app]!.headers }));
    await Promise.all(streams.map((stream) => stream.waitForOpen()));

    const publisher = createPublisher(bed.client, { prefix });
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
    // Both workers' subscribers (classic and shard) were cut each time.
    expect(await kills).to.equal(KILL_AT_MS.length * apps.length * 2);

    const log = (await bed.client.xRange(redisNames(prefix).log, '-', '+')) ?? [];
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
    const { prefix } = bed;
    const boards = new BoardStore(bed.client, redisNames(prefix));
    await boards.add('payments');
    await boards.add('edge');
    const app = await bed.startApp();
    const session = await bed.login(app.url, { boards: ['payments', 'edge'] });
    const streams = [`${app.url}/events?boards=edge,payments`, `${app.url}/events?boards=payments`].map(
      (url) => bed.openStream(url, { headers: session.headers }),
    );
    await Promise.all(streams.map((stream) => stream.waitForOpen()));
    const publisher = createPublisher(bed.client, { prefix });
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
      ((await bed.client.xRange(boardKeys(prefix, board).log, '-', '+')) ?? []).map((entry) => entry.id);
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
