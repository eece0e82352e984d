import { expect } from 'chai';
import { compareStreamIds, parseEnvelope } from '../../shared/events.ts';
import { boardKeys, redisNames } from '../../shared/keys.ts';
import { createPublisher, EventValidationError } from '../../shared/publisher.ts';
import { recentEventsKey } from '../../shared/sequence-script.ts';
import { useTestBed } from '../helpers/test-bed.ts';

describe('publisher and sequencing script', function () {
  const bed = useTestBed();

  const names = () => redisNames(bed.prefix);

  async function storedStatus(service: string) {
    const raw = await bed.client.hGet(names().status, service);
    const parsed = parseEnvelope(raw ?? '');
    return parsed.ok ? parsed.value : undefined;
  }

  it("gives each event of a batch its own increasing id, and publishes each envelope once on the board's shard channel", async function () {
    const subscriber = bed.client.duplicate();
    await subscriber.connect();
    const received: string[] = [];
    await subscriber.sSubscribe(boardKeys(bed.prefix, 'main').channel, (message) => received.push(message));
    try {
      const publisher = createPublisher(bed.client, { prefix: bed.prefix });
      const ids = await publisher.publish({
        type: 'metrics',
        points: [
          { name: 'a', value: 1 },
          { name: 'b', value: 2 },
          { name: 'a', value: 3 },
        ],
      });
      expect(ids).to.have.length(3);
      for (let index = 1; index < ids.length; index += 1)
        expect(compareStreamIds(ids[index]!, ids[index - 1]!)).to.equal(1);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(received.map((raw) => JSON.parse(raw).id)).to.deep.equal(ids);
    } finally {
      await subscriber.quit();
    }
  });

  it('keeps a status only if it is not older by ts than the current one', async function () {
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    await publisher.publish({ type: 'status', service: 'api', state: 'ok', ts: 2000 });
    await publisher.publish({ type: 'status', service: 'api', state: 'down', ts: 1000 });
    expect(await storedStatus('api')).to.include({ state: 'ok', ts: 2000 });
    const [tie] = await publisher.publish({ type: 'status', service: 'api', state: 'degraded', ts: 2000 });
    expect(await storedStatus('api')).to.include({ state: 'degraded', id: tie });
    await publisher.publish({ type: 'status', service: 'api', state: 'maintenance' });
    expect(await storedStatus('api')).to.include({ state: 'maintenance' });
    // Every one of them is in the log all the same: the history is complete.
    expect(await bed.client.xLen(names().log)).to.equal(4);
  });

  it('caps each metric series, the recent log events and (approximately) the log', async function () {
    const publisher = createPublisher(bed.client, {
      prefix: bed.prefix,
      historyMax: 100,
      metricHistoryMax: 5,
      eventHistoryMax: 3,
    });
    for (let index = 0; index < 8; index += 1) {
      await publisher.publish({ type: 'metric', name: 'm', value: index, ts: 1000 + index });
      await publisher.publish({ type: 'event', level: 'info', title: `e${index}` });
    }
    const series = await bed.client.lRange(`${names().metricPrefix}m`, 0, -1);
    expect(series.map((raw) => JSON.parse(raw).value)).to.deep.equal([3, 4, 5, 6, 7]);
    expect(await bed.client.zScore(names().metricIndex, 'm')).to.equal(1007);
    const events = await bed.client.lRange(recentEventsKey(names()), 0, -1);
    expect(events.map((raw) => JSON.parse(raw).title)).to.deep.equal(['e5', 'e6', 'e7']);
    for (let index = 0; index < 400; index += 1)
      await publisher.publish({ type: 'metric', name: 'fill', value: index });
    const length = await bed.client.xLen(names().log);
    expect(length).to.be.at.least(100).and.below(300);
  });

  it('keeps the metric index at the newest ts when an older point arrives late', async function () {
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    await publisher.publish({ type: 'metric', name: 'late', value: 1, ts: 5000 });
    await publisher.publish({ type: 'metric', name: 'late', value: 2, ts: 1000 });
    expect(await bed.client.zScore(names().metricIndex, 'late')).to.equal(5000);
  });

  it('carries numbers exactly (no 14-digit rounding by Lua)', async function () {
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    const values = [0.1 + 0.2, 123456789.12345679, 1e-300, -1.7976931348623157e308, 2 ** 53 + 2];
    for (const value of values) await publisher.publish({ type: 'metric', name: 'exact', value });
    const series = await bed.client.lRange(`${names().metricPrefix}exact`, 0, -1);
    expect(series.map((raw) => JSON.parse(raw).value)).to.deep.equal(values);
  });

  async function redisNow(): Promise<number> {
    const [seconds, micros] = (await bed.client.sendCommand(['TIME'])) as [string, string];
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  async function rejection(promise: Promise<unknown>): Promise<unknown> {
    try {
      await promise;
    } catch (error) {
      return error;
    }
    throw new Error('expected a rejection');
  }

  it('rejects a ts too far ahead of Redis time (or in microseconds), naming the field, sequencing nothing', async function () {
    const publisher = createPublisher(bed.client, { prefix: bed.prefix, maxFutureMs: 60_000 });
    const now = await redisNow();
    for (const ts of [now + 120_000, now * 1000]) {
      const error = await rejection(publisher.publish({ type: 'status', service: 'api', state: 'ok', ts }));
      expect(error).to.be.instanceOf(EventValidationError);
      expect(error).to.include({ field: 'ts', reason: 'invalid' });
      expect((error as Error).message).to.match(/^ts: .*60000 ms ahead/);
    }
    const batch = await rejection(
      publisher.publish({
        type: 'metrics',
        points: [
          { name: 'a', value: 1 },
          { name: 'b', value: 2, ts: now + 3_600_000 },
        ],
      }),
    );
    expect(batch).to.include({ field: 'points.1.ts' });
    expect(await bed.client.exists(names().log)).to.equal(0);
    // Within the allowed skew, and any past ts (backfill), are accepted.
    expect(await publisher.publish({ type: 'metric', name: 'a', value: 1, ts: now + 30_000 })).to.have.length(
      1,
    );
    expect(await publisher.publish({ type: 'metric', name: 'a', value: 0, ts: 1000 })).to.have.length(1);
  });

  it('orders current state by sequencing time: a future-dated status does not pin its tile', async function () {
    const publisher = createPublisher(bed.client, { prefix: bed.prefix, maxFutureMs: 60_000 });
    const now = await redisNow();
    await publisher.publish({ type: 'status', service: 'api', state: 'down', ts: now + 50_000 });
    await new Promise((resolve) => setTimeout(resolve, 5));
    await publisher.publish({ type: 'status', service: 'api', state: 'ok' });
    expect(await storedStatus('api')).to.include({ state: 'ok' });
    // A backfilled (older) status still does not replace it.
    await publisher.publish({ type: 'status', service: 'api', state: 'degraded', ts: now - 60_000 });
    expect(await storedStatus('api')).to.include({ state: 'ok' });
  });

  it('scores a future-dated metric series by sequencing time, so it cannot push real series out', async function () {
    const publisher = createPublisher(bed.client, { prefix: bed.prefix, maxFutureMs: 60_000 });
    const before = await redisNow();
    await publisher.publish({ type: 'metric', name: 'future', value: 1, ts: before + 55_000 });
    const after = await redisNow();
    const score = await bed.client.zScore(names().metricIndex, 'future');
    expect(score).to.be.at.least(before).and.at.most(after);
  });

  it('reloads its script after SCRIPT FLUSH (or a Redis restart)', async function () {
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    await publisher.publish({ type: 'metric', name: 'm', value: 1 });
    await bed.client.sendCommand(['SCRIPT', 'FLUSH']);
    expect(await publisher.publish({ type: 'metric', name: 'm', value: 2 })).to.have.length(1);
  });

  it('rejects invalid input with EventValidationError naming the field, sequencing nothing', async function () {
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    let caught: unknown;
    try {
      await publisher.publish({ type: 'status', service: 'api', state: 'ok', colour: 'red' });
    } catch (error) {
      caught = error;
    }
    expect(caught).to.be.instanceOf(EventValidationError);
    expect(caught).to.include({ field: 'colour', reason: 'invalid' });
    expect(await bed.client.exists(names().log)).to.equal(0);
  });
});
