import { expect } from 'chai';
import { createPublisher } from '../../../shared/publisher.ts';
import type { TestApp } from '../../helpers/app.ts';
import type { RecordedStream } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { redisNames } from '../../../shared/keys.ts';

describe('fan-out across workers', function () {
  const bed = useTestBed();
  let apps: TestApp[] = [];

  beforeEach(async function () {
    apps = await Promise.all([bed.startApp(), bed.startApp()]);
  });

  async function openOnEveryApp(): Promise<RecordedStream[]> {
    const sessions = await Promise.all(apps.map((app) => bed.login(app.url)));
    const streams = apps.map((app, index) =>
      bed.openStream(`${app.url}/events`, { headers: sessions[index]!.headers }),
    );
    await Promise.all(streams.map((stream) => stream.waitForOpen()));
    return streams;
  }

  it('delivers publisher and raw ingest events to clients on two workers once each, with one id, within a second', async function () {
    const [first, second] = await openOnEveryApp();
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    const started = Date.now();
    const [publishedId] = await publisher.publish({
      type: 'status',
      service: 'api',
      state: 'ok',
      message: 'all good',
    });
    await bed.client.publish(
      redisNames(bed.prefix).ingestChannel,
      JSON.stringify({ type: 'event', level: 'warn', title: 'disk 91% full' }),
    );
    await bed.client.publish(
      redisNames(bed.prefix).ingestChannel,
      JSON.stringify({ type: 'metric', name: 'api.latency', value: 12.5, unit: 'ms' }),
    );

    // Wait longer than the bound, so a late delivery fails on the bound with its measured time.
    for (const stream of [first, second]) {
      await stream!.waitFor((events) => events.length >= 3, 5000, 'three events');
    }
    expect(Date.now() - started).to.be.below(1000);
    // Give any duplicate a chance to arrive before asserting "exactly once".
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(first!.events).to.have.length(3);
    expect(second!.events).to.have.length(3);
    expect(first!.events.map((event) => event.id)).to.deep.equal(second!.events.map((event) => event.id));
    expect(first!.events[0]).to.include({ id: publishedId, type: 'status', service: 'api', state: 'ok' });
    expect(first!.events[1]).to.include({ type: 'event', level: 'warn', title: 'disk 91% full' });
    expect(first!.events[2]).to.include({ type: 'metric', name: 'api.latency', value: 12.5, unit: 'ms' });
    expect(await bed.client.xLen(redisNames(bed.prefix).log)).to.equal(3);
  });

  it('drops and counts invalid raw messages and still delivers the next valid one', async function () {
    const [first, second] = await openOnEveryApp();
    await bed.client.publish(redisNames(bed.prefix).ingestChannel, '{not json');
    await bed.client.publish(
      redisNames(bed.prefix).ingestChannel,
      JSON.stringify({ type: 'bogus', service: 'api' }),
    );
    await bed.client.publish(
      redisNames(bed.prefix).ingestChannel,
      JSON.stringify({ type: 'event', level: 'info', title: 'x'.repeat(70_000) }),
    );
    await bed.client.publish(
      redisNames(bed.prefix).ingestChannel,
      JSON.stringify({ type: 'status', service: 'api', state: 'sideways' }),
    );
    await bed.client.publish(
      redisNames(bed.prefix).ingestChannel,
      JSON.stringify({ type: 'status', service: 'db', state: 'down' }),
    );

    for (const stream of [first, second])
      await stream!.waitFor((events) => events.length >= 1, 1000, 'the valid event');
    expect(first!.events.map((event) => event.type)).to.deep.equal(['status']);
    expect(first!.events[0]).to.include({ service: 'db', state: 'down' });

    // Each invalid message is counted once per installation, by the worker that held its position.
    const rejectedByReason = async () => {
      const counts: Record<string, number> = {};
      for (const app of apps) {
        for (const value of (await app.metrics.eventsRejected.get()).values) {
          const reason = String(value.labels.reason);
          counts[reason] = (counts[reason] ?? 0) + value.value;
        }
      }
      return counts;
    };
    let byReason = await rejectedByReason();
    for (let attempt = 0; attempt < 20 && Object.keys(byReason).length < 4; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      byReason = await rejectedByReason();
    }
    expect(byReason).to.deep.equal({ bad_json: 1, unknown_type: 1, too_large: 1, invalid: 1 });
    expect(await bed.client.xLen(redisNames(bed.prefix).log)).to.equal(1);
  });
});
