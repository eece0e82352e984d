import { expect } from 'chai';
import { historyResponseSchema, type HistoryResponse } from '../../../shared/history.ts';
import {
  ANNOTATIONS_MAX,
  HISTORY_MINUTE,
  HISTORY_RECORD_BYTES,
  HISTORY_TEN_MINUTES,
} from '../../../shared/history-script.ts';
import { boardKeys, redisNames } from '../../../shared/keys.ts';
import { createPublisher, createSequencer, type Publisher } from '../../../shared/publisher.ts';
import { BoardStore } from '../../../server/auth/boards.ts';
import type { TestApp } from '../../helpers/app.ts';
import type { TestSession } from '../../helpers/auth.ts';
import { useTestBed } from '../../helpers/test-bed.ts';

const MINUTE = 60_000;

describe('GET /api/history: downsampled history and annotations', function () {
  this.timeout(60_000);
  const bed = useTestBed();
  let app: TestApp;
  let session: TestSession;
  let publisher: Publisher;

  beforeEach(async function () {
    app = await bed.startApp();
    session = await bed.login(app.url);
    publisher = createPublisher(bed.client, { prefix: bed.prefix });
  });

  async function history(query: string, who: TestSession = session): Promise<HistoryResponse> {
    const response = await fetch(`${app.url}/api/history?${query}`, { headers: who.headers });
    expect(response.status, await response.clone().text()).to.equal(200);
    expect(response.headers.get('cache-control')).to.equal('no-store');
    return historyResponseSchema.parse(await response.json());
  }

  /** The bucket starting at `start` as a row, or undefined. */
  function bucketAt(answer: HistoryResponse, start: number) {
    const index = answer.buckets.start.indexOf(start);
    if (index === -1) return undefined;
    const { min, max, sum, count, last } = answer.buckets;
    return { min: min[index], max: max[index], sum: sum[index], count: count[index], last: last[index] };
  }

  it('keeps min, max, sum, count and last (by ts) per minute and per 10 minutes, backfill included', async function () {
    // A 10-minute boundary 10 to 20 minutes ago: both minutes below fall in one 10-minute bucket.
    const start = Math.floor(Date.now() / 600_000) * 600_000 - 600_000;
    await publisher.publish({
      type: 'metrics',
      points: [
        { name: 'cpu', value: 5, ts: start + 1000 },
        { name: 'cpu', value: 9, ts: start + 20_000 },
        { name: 'cpu', value: 2, ts: start + 40_000 },
        { name: 'cpu', value: 7, ts: start + MINUTE + 5000 },
      ],
    });
    // Sequenced last but dated earlier (backfill): it joins its bucket without becoming its last value.
    await publisher.publish({ type: 'metric', name: 'cpu', value: 1, ts: start + 10_000 });
    // And one dated later than the bucket's last: it becomes the last value.
    await publisher.publish({ type: 'metric', name: 'cpu', value: 4, ts: start + 50_000 });

    const hour = await history('range=1h&metric=cpu');
    expect(hour).to.include({ metric: 'cpu', range: '1h', bucketMs: HISTORY_MINUTE.spanMs });
    expect(bucketAt(hour, start)).to.deep.equal({ min: 1, max: 9, sum: 21, count: 5, last: 4 });
    expect(bucketAt(hour, start + MINUTE)).to.deep.equal({ min: 7, max: 7, sum: 7, count: 1, last: 7 });
    expect(hour.buckets.start).to.have.length(2);

    const week = await history('range=7d&metric=cpu');
    expect(week.bucketMs).to.equal(HISTORY_TEN_MINUTES.spanMs);
    expect(week.buckets.start).to.deep.equal([start]);
    expect(bucketAt(week, start)).to.deep.equal({ min: 1, max: 9, sum: 28, count: 6, last: 7 });
    // Values exactly as sent: no rounding on the way (the sum of doubles, formatted with 17 digits).
    await publisher.publish({ type: 'metric', name: 'precise', value: 0.1 + 0.2, ts: start });
    expect(bucketAt(await history('range=1h&metric=precise'), start)?.last).to.equal(0.1 + 0.2);
  });

  it('answers the id up to which it includes events, read in the same step as the buckets', async function () {
    const [first] = await publisher.publish({ type: 'metric', name: 'rps', value: 10 });
    const before = await history('range=15m&metric=rps');
    expect(before.lastEventId).to.equal(first);
    expect(before.buckets.count.reduce((a, b) => a + b, 0)).to.equal(1);
    const [second] = await publisher.publish({ type: 'metric', name: 'rps', value: 20 });
    const after = await history('range=15m&metric=rps');
    expect(after.lastEventId).to.equal(second);
    expect(after.buckets.count.reduce((a, b) => a + b, 0)).to.equal(2);
  });

  it('bounds every series: 1440 one-minute and 1008 ten-minute buckets, whatever is sent, at a fixed size in memory', async function () {
    // Eight days at one point a minute, oldest first: the rings wrap.
    const now = Date.now();
    const minutes = 8 * 24 * 60;
    const points = Array.from({ length: minutes }, (_, index) => ({
      name: 'load',
      value: index,
      ts: now - (minutes - index) * MINUTE,
    }));
    for (let offset = 0; offset < points.length; offset += 1000) {
      await publisher.publish({ type: 'metrics', points: points.slice(offset, offset + 1000) });
    }
    const day = await history('range=24h&metric=load');
    expect(day.buckets.start.length).to.be.within(1439, 1440);
    expect(day.buckets.start[0]).to.be.at.least(day.serverTime - 24 * 3_600_000 - MINUTE);
    const week = await history('range=7d&metric=load');
    expect(week.buckets.start.length).to.be.within(1007, 1008);
    expect(week.buckets.count.slice(1, -1).every((count) => count === 10)).to.equal(true);

    // A point older than the ring keeps (its slot holds a newer bucket) is left out of history.
    const stale = now - 9 * 24 * 3_600_000;
    await publisher.publish({ type: 'metric', name: 'load', value: -1, ts: stale });
    const again = await history('range=7d&metric=load');
    expect(again.buckets.min.includes(-1)).to.equal(false);

    const keys = boardKeys(bed.prefix, 'main');
    const minuteKey = `${keys.historyPrefix}1m:load`;
    const tenKey = `${keys.historyPrefix}10m:load`;
    expect(await bed.client.strLen(minuteKey)).to.equal(HISTORY_MINUTE.slots * HISTORY_RECORD_BYTES);
    expect(await bed.client.strLen(tenKey)).to.equal(HISTORY_TEN_MINUTES.slots * HISTORY_RECORD_BYTES);
    const bytes =
      Number(await bed.client.sendCommand(['MEMORY', 'USAGE', minuteKey])) +
      Number(await bed.client.sendCommand(['MEMORY', 'USAGE', tenKey]));
    // The figure stated in docs/events.md ("History and annotations"): 80,640 + 56,448 bytes of records.
    expect(bytes).to.be.within(137_088, 140_000);
    process.stdout.write(`      history memory per series: ${bytes} bytes (MEMORY USAGE of both rings)\n`);

    // A new series is allocated at its full size at once.
    await publisher.publish({ type: 'metric', name: 'fresh', value: 1 });
    expect(await bed.client.strLen(`${keys.historyPrefix}1m:fresh`)).to.equal(
      HISTORY_MINUTE.slots * HISTORY_RECORD_BYTES,
    );
  });

  it('keeps annotate: true events of the board as annotations, in the range, capped', async function () {
    const now = Date.now();
    const [deploy] = await publisher.publish({
      type: 'event',
      level: 'info',
      title: 'deploy v2',
      service: 'api',
      annotate: true,
      ts: now - 2 * 3_600_000,
    });
    await publisher.publish({ type: 'event', level: 'warn', title: 'not a marker', annotate: false });
    await publisher.publish({ type: 'event', level: 'info', title: 'plain' });
    const [recent] = await publisher.publish({
      type: 'event',
      level: 'error',
      title: 'rollback',
      annotate: true,
    });

    const hour = await history('range=1h');
    expect(hour.metric).to.equal(null);
    expect(hour.buckets.start).to.deep.equal([]);
    expect(hour.annotations.map((event) => event.id)).to.deep.equal([recent]);
    const day = await history('range=24h');
    expect(day.annotations.map((event) => [event.id, event.title, event.annotate])).to.deep.equal([
      [deploy, 'deploy v2', true],
      [recent, 'rollback', true],
    ]);
    expect(day.annotations[0]?.service).to.equal('api');

    const key = boardKeys(bed.prefix, 'main').annotations;
    const extra = Array.from({ length: ANNOTATIONS_MAX + 5 }, (_, index) => ({
      type: 'event' as const,
      level: 'info' as const,
      title: `mark ${index}`,
      annotate: true,
      ts: now - 60_000 + index,
    }));
    await createSequencer(bed.client, { prefix: bed.prefix }).sequence(extra);
    expect(await bed.client.zCard(key)).to.equal(ANNOTATIONS_MAX);
  });

  it('checks the board like the snapshot: 403 for a board not granted, 400 for a bad range or metric', async function () {
    const boards = new BoardStore(bed.client, redisNames(bed.prefix));
    await boards.add('payments', 'Payments');
    await app.boards.refresh();
    await publisher.publish({ type: 'metric', board: 'payments', name: 'tps', value: 3 });
    const viewer = await bed.login(app.url, { username: 'carol', boards: ['main'] });
    const forbidden = await fetch(`${app.url}/api/history?board=payments&metric=tps`, {
      headers: viewer.headers,
    });
    expect(forbidden.status).to.equal(403);
    const granted = await bed.login(app.url, { username: 'dave', boards: ['payments'] });
    const answer = await history('board=payments&range=6h&metric=tps', granted);
    expect(answer.buckets.sum).to.deep.equal([3]);
    for (const query of ['range=2d', 'metric=bad%20name', 'board=Nope']) {
      const bad = await fetch(`${app.url}/api/history?${query}`, { headers: session.headers });
      expect(bad.status, query).to.equal(400);
    }
    const anonymous = await fetch(`${app.url}/api/history?range=1h`);
    expect(anonymous.status).to.equal(401);
  });
});
