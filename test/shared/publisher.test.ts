import { expect } from 'chai';
import { compareStreamIds, parseEnvelope } from '../../shared/events.ts';
import { redisNames } from '../../shared/keys.ts';
import { createPublisher, createSequencer, EventValidationError } from '../../shared/publisher.ts';
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

  it('gives each event of a batch its own increasing id, and publishes each envelope once', async function () {
    const subscriber = bed.client.duplicate();
    await subscriber.connect();
    const received: string[] = [];
    await subscriber.subscribe(`${bed.prefix}:events`, (message) => received.push(message));
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

  it('sequences a raw message once per dedupe key, within its window', async function () {
    const sequencer = createSequencer(bed.client, { prefix: bed.prefix });
    const event = { type: 'event' as const, level: 'info' as const, title: 'same bytes' };
    const dedupeKey = `${names().dedupePrefix}abc`;
    const first = await sequencer.sequence([event], { dedupeKey, dedupeWindowMs: 200 });
    const second = await sequencer.sequence([event], { dedupeKey, dedupeWindowMs: 200 });
    expect(first).to.have.length(1);
    expect(second).to.deep.equal([]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await sequencer.sequence([event], { dedupeKey, dedupeWindowMs: 200 })).to.have.length(1);
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
