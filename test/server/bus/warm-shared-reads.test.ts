// Replays from the log that run at once from the same id (a storm of resumes older than the worker's
// memory) share their reads (server/bus/event-log.ts, `SharedLogReads`); a read joined may have run before
// the joining replay began, so only a read of its own ends a replay.
import { expect } from 'chai';
import { replayLog, type SharedLogReads } from '../../../server/bus/event-log.ts';
import type { RedisClient } from '../../../server/redis.ts';
import type { Envelope } from '../../../shared/events.ts';
import { redisNames } from '../../../shared/keys.ts';
import { createPublisher } from '../../../shared/publisher.ts';
import { until } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';

describe('shared log reads', function () {
  const bed = useTestBed();

  /** The bed's client, counting XRANGE calls, each answered only once `afterRead` resolves. */
  function countingClient(afterRead: () => Promise<void> = async () => undefined) {
    const counts = { xRange: 0 };
    const redis = new Proxy(bed.client, {
      get(target, property) {
        if (property === 'xRange') {
          return async (...args: Parameters<RedisClient['xRange']>) => {
            counts.xRange += 1;
            const entries = await target.xRange(...args);
            await afterRead();
            return entries;
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    return { redis, counts };
  }

  it('lets replays from the same id share each full read, and ends each with a read of its own', async function () {
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    const ids: string[] = [];
    for (let index = 0; index < 25; index += 1)
      ids.push(...(await publisher.publish({ type: 'metric', name: 'm', value: index })));
    const names = redisNames(bed.prefix);
    const shared: SharedLogReads = new Map();
    const { redis, counts } = countingClient();
    const received: string[][] = [[], [], []];
    const replays = received.map((into) =>
      replayLog(
        redis,
        names,
        'main',
        ids[0]!,
        (events: readonly Envelope[]) => into.push(...events.map((event) => event.id)),
        10,
        shared,
      ),
    );
    const outcomes = await Promise.all(replays);
    expect(outcomes).to.deep.equal(received.map(() => ({ kind: 'replayed', count: 24 })));
    for (const into of received) expect(into).to.deep.equal(ids.slice(1));
    // Batches of 10 from the same id: two full reads shared (2), the short last one by the first replay
    // (1), which each joiner reads again on its own (2, one per joiner) and finds nothing after.
    expect(counts.xRange).to.equal(5);
    expect(shared.size, 'nothing left in flight').to.equal(0);
  });

  it('a replay that joined a read issued before an event was sequenced still gets that event', async function () {
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    const [first] = await publisher.publish({ type: 'metric', name: 'm', value: 0 });
    const names = redisNames(bed.prefix);
    const shared: SharedLogReads = new Map();
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let firstReadRan = false;
    const { redis, counts } = countingClient(async () => {
      if (counts.xRange !== 1) return;
      firstReadRan = true;
      await held;
    });
    const early: string[] = [];
    const late: string[] = [];
    const into = (ids: string[]) => (events: readonly Envelope[]) => ids.push(...events.map((e) => e.id));
    // The first replay's read has run, its answer not handed over yet, when an event is sequenced (and
    // fanned out before the second stream joined) and the second replay begins and joins that read.
    const firstReplay = replayLog(redis, names, 'main', first!, into(early), 10, shared);
    await until(() => firstReadRan, 5000, 'the first read');
    const [later] = await publisher.publish({ type: 'metric', name: 'm', value: 1 });
    const secondReplay = replayLog(redis, names, 'main', first!, into(late), 10, shared);
    expect(counts.xRange, 'joined, no read of its own yet').to.equal(1);
    release();
    await Promise.all([firstReplay, secondReplay]);
    expect(early).to.deep.equal([]);
    expect(late, 'found by its own read after the joined one').to.deep.equal([later]);
  });
});
