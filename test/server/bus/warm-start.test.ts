// A worker that starts following a board reads the newest events of its log into its memory
// (docs/architecture.md, "Replays from memory"): after a reload, the resumes of every stream are replayed
// from there, with bodies encoded once, instead of one log read per client. The seam between that read
// and the board's live messages loses and doubles nothing.
import { expect } from 'chai';
import { EventBus, PROBE_PREFIX } from '../../../server/bus/event-bus.ts';
import { readRecentEvents } from '../../../server/bus/event-log.ts';
import { createLogger } from '../../../server/log.ts';
import { createMetrics } from '../../../server/metrics/worker-metrics.ts';
import type { RedisClient } from '../../../server/redis.ts';
import { Hub } from '../../../server/sse/hub.ts';
import { redisNames } from '../../../shared/keys.ts';
import { createPublisher, createSequencer, type Publisher } from '../../../shared/publisher.ts';
import { sleep, until } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { logIds } from '../sse/stream-helpers.ts';
import { monitorCommands } from '../../helpers/redis-monitor.ts';

const metric = (value: number) => ({ type: 'metric', name: 'm', value });

async function publishMany(publisher: Publisher, count: number, from = 0): Promise<string[]> {
  const ids: string[] = [];
  for (let index = from; index < from + count; index += 1)
    ids.push(...(await publisher.publish(metric(index))));
  return ids;
}

describe('warm start: a worker reads the newest events of a board when it starts following it', function () {
  this.timeout(30_000);
  const bed = useTestBed();

  describe('the read', function () {
    it('returns every entry after its floor, an entry the log holds, within the count and the age', async function () {
      const names = redisNames(bed.prefix);
      const read = (count: number, now: number) =>
        readRecentEvents(bed.client, names, 'main', { count, maxAgeMs: 10_000, now });
      expect(await read(4, Date.now())).to.deep.equal({ floor: '0-0', events: [] }, 'an empty log');
      // Ten entries one second apart, the fifth of which does not parse.
      const base = Date.now() - 60_000;
      const ids = Array.from({ length: 10 }, (_, index) => `${base + index * 1000}-0`);
      for (const [index, id] of ids.entries()) {
        const entry =
          index === 4
            ? '{"type":"bogus"}'
            : JSON.stringify({ type: 'metric', name: 'm', value: index, ts: 1 });
        await bed.client.xAdd(names.log, id, { e: entry });
      }
      const now = base + 9000;
      const byCount = await read(4, now);
      expect(byCount.floor, 'the entry before the newest four').to.equal(ids[5]);
      expect(byCount.events.map((event) => event.id)).to.deep.equal(ids.slice(6));
      expect(byCount.events[0]).to.include({ type: 'metric', name: 'm', value: 6, board: 'main' });
      // A log shorter than the count: its oldest entry is the floor (what came before may have been trimmed).
      const whole = await read(50, base + 9000);
      expect(whole.floor).to.equal(ids[0]);
      expect(whole.events.map((event) => event.id)).to.deep.equal([...ids.slice(1, 4), ...ids.slice(5)]);
      // By age: ten seconds back from 3 s after the newest reaches the third entry (2 s after the first).
      const byAge = await read(50, base + 12_000);
      expect(byAge.floor, 'the newest entry too old').to.equal(ids[1]);
      expect(byAge.events.map((event) => event.id)).to.deep.equal([ids[2], ids[3], ...ids.slice(5)]);
    });
  });

  describe('resuming on a worker that started after the events', function () {
    it('replays exactly the missed events from memory, in order, once, with no XRANGE of the log', async function () {
      const publisher = createPublisher(bed.client, { prefix: bed.prefix });
      const published = await publishMany(publisher, 40);
      const lastSeen = published[9]!;
      const app = await bed.startApp();
      const session = await bed.login(app.url);
      const log = redisNames(bed.prefix).log;

      // MONITOR on a raw socket: a replay read of the log (XRANGE) would show here.
      const monitor = await monitorCommands(bed.redis.url);
      let seen: string;
      try {
        const resumed = bed.openStream(`${app.url}/events`, {
          headers: { ...session.headers, 'Last-Event-ID': lastSeen },
        });
        await resumed.waitFor((events) => events.length >= 30, 10_000, 'the 30 missed events');
        const [live] = await publishMany(publisher, 1, 40);
        await resumed.waitFor((events) => events.length >= 31, 5000, 'a live event');
        await sleep(200);
        expect(resumed.events.map((event) => event.id)).to.deep.equal([...published.slice(10), live]);
        expect(resumed.resets).to.equal(0);
        seen = await monitor.stop(bed.client);
      } finally {
        monitor.close();
      }
      expect(seen, 'no replay read of the log').to.not.match(new RegExp(`"XRANGE" "${log}"`, 'i'));
      const replays = (await app.metrics.replays.get()).values;
      expect(replays).to.deep.include({ labels: { kind: 'memory' }, value: 1 });
      expect(replays.filter((value) => value.labels.kind === 'client')).to.deep.equal([]);
    });

    it('still answers reset for an id older than the retained log', async function () {
      const publisher = createPublisher(bed.client, { prefix: bed.prefix, historyMax: 100 });
      const [oldest] = await publishMany(publisher, 1);
      // XADD MAXLEN ~ trims whole stream nodes (100 entries each): 400 more trim the start.
      await publishMany(publisher, 400, 1);
      const app = await bed.startApp();
      const session = await bed.login(app.url);
      const stream = bed.openStream(`${app.url}/events`, {
        headers: { ...session.headers, 'Last-Event-ID': oldest! },
      });
      await until(() => stream.resets === 1, 5000, 'reset');
      await sleep(200);
      expect(stream.events).to.deep.equal([]);
      expect(stream.resets).to.equal(1);
    });
  });

  describe('the seam between the read and live messages', function () {
    /**
     * An event bus on the bed's Redis whose start read runs `around` around the real XREVRANGE, and whose
     * board listener reports each message it was given.
     */
    async function startBus(around: (read: () => Promise<unknown>) => Promise<unknown>) {
      const subscriber = await bed.connect();
      const received: string[] = [];
      const wrappedSubscriber = new Proxy(subscriber, {
        get(target, property) {
          if (property === 'sSubscribe') {
            return (channel: string, listener: (message: string, channel: string) => void) =>
              target.sSubscribe(channel, (message: string, from: string) => {
                listener(message, from);
                received.push(message);
              });
          }
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const redis = new Proxy(bed.client, {
        get(target, property) {
          if (property === 'xRevRange') {
            return (...args: Parameters<RedisClient['xRevRange']>) => {
              let result: unknown;
              return around(async () => (result = await target.xRevRange(...args))).then(() => result);
            };
          }
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const metrics = createMetrics();
      const hub = new Hub({ metrics, heartbeatMs: 60_000 });
      const bus = new EventBus({
        redis,
        subscriber: wrappedSubscriber,
        sequencer: createSequencer(bed.client, { prefix: bed.prefix }),
        delivery: hub,
        metrics,
        log: createLogger('silent'),
      });
      await bus.start();
      return { bus, hub, subscriber, received };
    }

    /** The hub holds every event of the log after `floor` once, in order, and its position is the newest. */
    async function expectWhole(hub: Hub, floor: string): Promise<void> {
      hub.flush();
      const ids = await logIds(bed.client, bed.prefix, floor);
      expect(hub.positions().get('main')).to.equal(ids.at(-1));
      expect(hub.recentAfter('main', floor)?.map((event) => event.id)).to.deep.equal(ids);
    }

    it('keeps an event published between the subscription and the read once (in the read; its message dropped)', async function () {
      const publisher = createPublisher(bed.client, { prefix: bed.prefix });
      const [first] = await publishMany(publisher, 3);
      let during: string | undefined;
      const { bus, hub, received } = await startBus(async (read) => {
        [during] = await publishMany(publisher, 1, 3);
        await until(() => received.some((message) => message.includes(`"${during}"`)), 5000, 'its message');
        await read();
      });
      try {
        await bus.follow(['main']);
        const live = await publishMany(publisher, 2, 4);
        await until(() => hub.positions().get('main') === live.at(-1), 5000, 'the live events');
        await sleep(50);
        await expectWhole(hub, first!);
      } finally {
        await bus.stop();
      }
    });

    it('keeps an event published after the read, whose message comes before the read ends, once', async function () {
      const publisher = createPublisher(bed.client, { prefix: bed.prefix });
      const [first] = await publishMany(publisher, 3);
      const { bus, hub, received } = await startBus(async (read) => {
        await read();
        const [after] = await publishMany(publisher, 1, 3);
        await until(() => received.some((message) => message.includes(`"${after}"`)), 5000, 'its message');
      });
      try {
        await bus.follow(['main']);
        await sleep(50);
        await expectWhole(hub, first!);
        expect(hub.recentAfter('main', first!)).to.have.length(3);
      } finally {
        await bus.stop();
      }
    });

    it('fills a gap marked while the board starts once the start is done', async function () {
      const publisher = createPublisher(bed.client, { prefix: bed.prefix });
      const [first] = await publishMany(publisher, 3);
      const started: { subscriber?: RedisClient } = {};
      const { bus, hub, subscriber, received } = await startBus(async (read) => {
        await read();
        // The subscription may have lost messages (a reconnect): the board is held and probed, and the
        // probe comes back before the start is done; the gap fill waits for the start.
        started.subscriber?.emit('reconnecting');
        await until(() => received.some((message) => message.startsWith(PROBE_PREFIX)), 5000, 'the probe');
        // Sequenced meanwhile, its message lost: only a gap fill after the start brings it.
        await bed.client.xAdd(redisNames(bed.prefix).log, '*', {
          e: JSON.stringify({ type: 'metric', name: 'm', value: 99, ts: Date.now() }),
        });
      });
      started.subscriber = subscriber;
      try {
        await bus.follow(['main']);
        expect(bus.live, 'held until the gap is filled').to.equal(false);
        await until(() => bus.live, 5000, 'the gap fill');
        await expectWhole(hub, first!);
        expect(hub.recentAfter('main', first!)).to.have.length(3);
      } finally {
        await bus.stop();
      }
    });
  });
});
