// Replays from memory (docs/architecture.md, "Replays from memory"): the worker keeps what it fanned out
// lately per board, and a resume whose id that covers is replayed from it, with no read of the board's
// log; an id it does not cover (older, newer, after a hole) still goes to the log.
import { expect } from 'chai';
import { RecentEvents, type RecentEvent } from '../../../server/sse/recent-events.ts';
import { redisNames } from '../../../shared/keys.ts';
import { createPublisher } from '../../../shared/publisher.ts';
import { until } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { monitorCommands } from '../../helpers/redis-monitor.ts';
import { openRawStream } from '../../helpers/raw-stream.ts';

function event(board: string, id: string): RecentEvent {
  return { board, id, body: Buffer.from(`data: ${id}\n\n`), topic: 'metric:m' };
}

const ids = (events: readonly RecentEvent[] | undefined) => events?.map((each) => each.id);

describe('recent events', function () {
  describe('the per-board ring', function () {
    it('covers ids from its start position up to the newest event, and nothing outside', function () {
      const recent = new RecentEvents({ perBoard: 3 });
      recent.start('main', '1-0');
      for (const id of ['2-0', '3-0', '4-0']) recent.add(event('main', id), 0);
      expect(ids(recent.after('main', '1-0'))).to.deep.equal(['2-0', '3-0', '4-0']);
      expect(ids(recent.after('main', '3-0'))).to.deep.equal(['4-0']);
      expect(ids(recent.after('main', '4-0'))).to.deep.equal([]);
      // An id between two kept ones (a cursor of another worker's clock) gets what follows it.
      expect(ids(recent.after('main', '2-5'))).to.deep.equal(['3-0', '4-0']);
      expect(recent.after('main', '0-9'), 'older than kept').to.equal(undefined);
      expect(recent.after('main', '5-0'), 'newer than fanned out').to.equal(undefined);
      expect(recent.after('other', '1-0'), 'a board not followed').to.equal(undefined);
      // The oldest goes past the count: 2-0 is no longer covered from 1-0.
      recent.add(event('main', '5-0'), 0);
      expect(recent.after('main', '1-0')).to.equal(undefined);
      expect(ids(recent.after('main', '2-0'))).to.deep.equal(['3-0', '4-0', '5-0']);
    });

    it('starts with the newest events of the log (a warm start) and covers every id from its floor', function () {
      const recent = new RecentEvents({ perBoard: 3, maxAgeMs: 1000 });
      const read = ['2-0', '3-0', '4-0', '5-0'].map((id) => event('main', id));
      // Four read for three kept: the oldest goes past the count, and the floor moves onto it.
      recent.start('main', '1-0', read, [100, 100, 100, 100], 100);
      expect(recent.after('main', '1-0')).to.equal(undefined);
      expect(ids(recent.after('main', '2-0'))).to.deep.equal(['3-0', '4-0', '5-0']);
      recent.add(event('main', '6-0'), 200);
      expect(ids(recent.after('main', '4-0'))).to.deep.equal(['5-0', '6-0']);
      // Aged by when they were sequenced: 3-0 and 4-0 are too old at 1150, 5-0 (sequenced at 900) is not.
      const aged = new RecentEvents({ maxAgeMs: 1000 });
      aged.start('main', '1-0', read.slice(1), [100, 100, 900], 1150);
      expect(aged.after('main', '3-0')).to.equal(undefined);
      expect(ids(aged.after('main', '4-0'))).to.deep.equal(['5-0']);
      // A board kept already is not started again.
      aged.start('main', '0-0', read, [1150, 1150, 1150, 1150], 1150);
      expect(aged.after('main', '2-0')).to.equal(undefined);
    });

    it('lets events go past their age, and starts over after a hole', function () {
      const recent = new RecentEvents({ maxAgeMs: 1000 });
      recent.start('main', '1-0');
      recent.add(event('main', '2-0'), 0);
      recent.add(event('main', '3-0'), 5000);
      expect(recent.after('main', '1-0'), '2-0 is too old').to.equal(undefined);
      expect(ids(recent.after('main', '2-0'))).to.deep.equal(['3-0']);
      // A reset (events lost to this worker) with no known position: covered again after the next event.
      recent.restart('main');
      expect(recent.after('main', '3-0')).to.equal(undefined);
      recent.add(event('main', '9-0'), 5000);
      expect(recent.after('main', '3-0')).to.equal(undefined);
      recent.add(event('main', '10-0'), 5000);
      expect(ids(recent.after('main', '9-0'))).to.deep.equal(['10-0']);
      recent.restart('main', '20-0');
      expect(ids(recent.after('main', '20-0'))).to.deep.equal([]);
      recent.drop('main');
      expect(recent.after('main', '20-0')).to.equal(undefined);
    });
  });

  describe('resuming', function () {
    this.timeout(30_000);
    const bed = useTestBed();

    it('replays a resume the worker kept from memory: no XRANGE, every missed event once', async function () {
      const app = await bed.startApp();
      const session = await bed.login(app.url);
      const publisher = createPublisher(bed.client, { prefix: bed.prefix });
      const first = bed.openStream(`${app.url}/events`, { headers: session.headers });
      await first.waitForOpen();
      await publisher.publish({ type: 'metric', name: 'm', value: 0 });
      await first.waitFor((events) => events.length === 1);
      const lastSeen = first.events.at(-1)!.id;
      first.close();
      for (let index = 1; index <= 20; index += 1)
        await publisher.publish({ type: 'metric', name: 'm', value: index });
      const log = redisNames(bed.prefix).log;
      await until(
        () => app.hub.fanOutPositions().get('main') !== lastSeen.replace('main:', ''),
        5000,
        'fan-out',
      );

      // MONITOR on a raw socket: any read of the log while the stream resumes would show here.
      const monitor = await monitorCommands(bed.redis.url);
      let seen: string;
      try {
        const resumed = bed.openStream(`${app.url}/events`, {
          headers: { ...session.headers, 'Last-Event-ID': lastSeen },
        });
        await resumed.waitFor((events) => events.length === 20);
        expect(resumed.events.map((each) => (each.type === 'metric' ? each.value : undefined))).to.deep.equal(
          Array.from({ length: 20 }, (_, index) => index + 1),
        );
        seen = await monitor.stop(bed.client);
      } finally {
        monitor.close();
      }
      expect(seen, 'no read of the log').to.not.include(`"${log}"`);
    });

    it('replays the same kept events to streams resuming from different ids, each frame with its own id, each event once', async function () {
      const app = await bed.startApp();
      const session = await bed.login(app.url);
      const publisher = createPublisher(bed.client, { prefix: bed.prefix });
      const live = bed.openStream(`${app.url}/events`, { headers: session.headers });
      await live.waitForOpen();
      for (let index = 0; index <= 20; index += 1)
        await publisher.publish({ type: 'metric', name: 'm', value: index });
      await live.waitFor((events) => events.length === 21);
      live.close();
      const sent = live.events.map((each) => each.id);
      await until(() => app.hub.fanOutPositions().get('main') === sent[20], 5000, 'fan-out');

      // The first resume frames the kept events; the second, from a later id, replays the same events:
      // it must get only those after its own id, each framed with its own id.
      const frames = (text: string) =>
        [...text.matchAll(/^id: main:(\S+)\nevent: metric\ndata: (.*)$/gm)].map((match) => ({
          id: match[1],
          dataId: (JSON.parse(match[2] ?? '') as { id: string }).id,
        }));
      for (const from of [0, 10, 0]) {
        const resumed = await openRawStream(`${app.url}/events`, {
          headers: session.headers,
          lastEventId: sent[from]!,
        }).opened;
        try {
          await resumed.waitForText(new RegExp(`id: main:${sent[20]}\\n`));
          const got = frames(resumed.text());
          expect(got.map((frame) => frame.id)).to.deep.equal(sent.slice(from + 1));
          expect(got.map((frame) => frame.dataId)).to.deep.equal(sent.slice(from + 1));
        } finally {
          resumed.close();
        }
      }
    });
  });
});
