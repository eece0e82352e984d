import { expect } from 'chai';
import { errorResponseSchema } from '../../../shared/api.ts';
import { redisNames } from '../../../shared/keys.ts';
import { createPublisher, type Publisher } from '../../../shared/publisher.ts';
import { RECENT_EVENTS_PER_BOARD } from '../../../server/sse/recent-events.ts';
import type { TestApp } from '../../helpers/app.ts';
import type { TestSession } from '../../helpers/auth.ts';
import { sleep, until, type RecordedStream } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { logIds } from './stream-helpers.ts';

/** A mix of the three event types, so replay covers each encoding. */
function sample(index: number): object {
  switch (index % 3) {
    case 0:
      return { type: 'status', service: `svc-${index % 7}`, state: 'ok', message: `tick ${index}` };
    case 1:
      return { type: 'metric', name: 'api.latency', value: index + 0.5, unit: 'ms' };
    default:
      return { type: 'event', level: 'info', title: `event ${index}` };
  }
}

describe('resuming the event stream', function () {
  this.timeout(30_000);
  const bed = useTestBed();
  let publisher: Publisher;

  beforeEach(function () {
    publisher = createPublisher(bed.client, { prefix: bed.prefix, historyMax: 100 });
  });

  async function start(env: Record<string, string> = {}): Promise<{ app: TestApp; session: TestSession }> {
    const app = await bed.startApp(env);
    return { app, session: await bed.login(app.url) };
  }

  function open(url: string, session: TestSession, headers: Record<string, string> = {}): RecordedStream {
    return bed.openStream(url, { headers: { ...session.headers, ...headers } });
  }

  async function publishSamples(count: number, from = 0): Promise<string[]> {
    const ids: string[] = [];
    for (let index = from; index < from + count; index += 1)
      ids.push(...(await publisher.publish(sample(index))));
    return ids;
  }

  for (const { source, kind } of [
    { source: 'from the log (a worker that did not see them)', kind: 'client' },
    { source: "from the worker's memory", kind: 'memory' },
  ]) {
    it(`delivers exactly the events missed while disconnected, ${source}, in order, then live ones, with no duplicate while events keep coming`, async function () {
      // A log long enough for every event of this test: with the suite's historyMax of 100, a busy machine
      // publishes enough live events before the stream catches up that XADD MAXLEN ~ trims the first missed
      // ones, and the log is no longer the list of what was published.
      publisher = createPublisher(bed.client, { prefix: bed.prefix, historyMax: 10_000 });
      const { app: firstApp, session } = await start();
      const first = open(`${firstApp.url}/events`, session);
      await first.waitForOpen();
      await publishSamples(5);
      await first.waitFor((events) => events.length === 5);
      const lastSeen = first.events.at(-1)!.id;
      first.close();

      // From the log: more than a starting worker reads into its memory (RECENT_EVENTS_PER_BOARD).
      const missed = await publishSamples(kind === 'client' ? RECENT_EVENTS_PER_BOARD + 100 : 100, 5);
      // From the log: a worker started after the events the client missed.
      const later = kind === 'client' ? await bed.startApp() : undefined;
      const app = later ?? firstApp;
      if (later === undefined) {
        await until(
          () => app.hub.recentAfter('main', lastSeen)?.length === missed.length,
          5000,
          'the worker to fan out all 100',
        );
      }
      // Live events keep arriving while the replay runs: they are held and de-duplicated by id.
      let publishing = true;
      const live: string[] = [];
      const background = (async () => {
        let index = 5 + missed.length;
        while (publishing) {
          live.push(...(await publisher.publish(sample(index))));
          index += 1;
          await sleep(2);
        }
      })();
      const second = open(`${app.url}/events`, session, { 'Last-Event-ID': lastSeen });
      await second.waitFor(
        (events) => events.length >= missed.length + 30,
        20_000,
        'the missed + live events',
      );
      publishing = false;
      await background;
      const expected = [...missed, ...live];
      expect(await logIds(bed.client, bed.prefix, lastSeen)).to.deep.equal(expected);
      await second.waitFor((events) => events.length >= expected.length, 5000, 'every event published');
      await sleep(200);

      const received = second.events.map((event) => event.id);
      expect(received).to.deep.equal(expected);
      expect(second.resets).to.equal(0);
      expect((await app.metrics.replays.get()).values).to.deep.include({ labels: { kind }, value: 1 });
    });
  }

  it('resumes from ?since= like Last-Event-ID, and the header wins when a reconnect sends both', async function () {
    const { app, session } = await start();
    const ids = await publishSamples(10);
    const bySince = open(`${app.url}/events?since=${ids[3]}`, session);
    const byBoth = open(`${app.url}/events?since=${ids[3]}`, session, { 'Last-Event-ID': ids[7]! });
    await bySince.waitFor((events) => events.length === 6);
    await byBoth.waitFor((events) => events.length === 2);
    await sleep(200);
    expect(bySince.events.map((event) => event.id)).to.deep.equal(ids.slice(4));
    expect(byBoth.events.map((event) => event.id)).to.deep.equal(ids.slice(8));
  });

  it("resumes through EventSource's own reconnect when the server ends the stream, losing nothing published meanwhile", async function () {
    const { app, session } = await start({ SSE_RETRY_MS: '400' });
    const stream = open(`${app.url}/events`, session);
    await stream.waitForOpen();
    await publishSamples(3);
    await stream.waitFor((events) => events.length === 3);

    app.hub.closeAll('shutdown');
    // Published while the browser waits out `retry:` (400-600 ms) before reconnecting by itself.
    await publishSamples(50, 3);
    await stream.waitFor((events) => events.length >= 53, 5000, 'the 50 events published while away');
    await publishSamples(2, 53);
    await stream.waitFor((events) => events.length >= 55);
    await sleep(200);
    expect(stream.opens).to.equal(2);
    expect(stream.events.map((event) => event.id)).to.deep.equal(await logIds(bed.client, bed.prefix));
  });

  it('sends reset for an id older than the retained log, then live events', async function () {
    const { session } = await start();
    const [oldest] = await publishSamples(1);
    // historyMax 100: XADD MAXLEN ~ trims whole stream nodes (100 entries each), so 400 more trim the start.
    await publishSamples(400, 1);
    expect(await bed.client.xLen(redisNames(bed.prefix).log)).to.be.below(400);
    // A worker that did not see them: the first one would replay them from its memory.
    const app = await bed.startApp();

    const stream = open(`${app.url}/events`, session, { 'Last-Event-ID': oldest! });
    await until(() => stream.resets === 1, 5000, 'reset');
    const [live] = await publishSamples(1, 401);
    await stream.waitFor((events) => events.length === 1);
    await sleep(200);
    expect(stream.resets).to.equal(1);
    expect(stream.events.map((event) => event.id)).to.deep.equal([live]);
    expect((await app.metrics.resets.get()).values[0]?.value).to.equal(1);
  });

  it('sends reset for an id the log never issued (e.g. Redis lost its data), and still delivers live events', async function () {
    const { app, session } = await start();
    await publishSamples(3);
    const stream = open(`${app.url}/events`, session, { 'Last-Event-ID': '99999999999999-0' });
    await until(() => stream.resets === 1, 5000, 'reset');
    const [live] = await publishSamples(1, 3);
    await stream.waitFor((events) => events.length === 1);
    expect(stream.events.map((event) => event.id)).to.deep.equal([live]);
  });

  it('answers 400 naming the field for a malformed resume id', async function () {
    const { app, session } = await start();
    const response = await fetch(`${app.url}/events?since=yesterday`, { headers: session.headers });
    expect(response.status).to.equal(400);
    const body = errorResponseSchema.parse(await response.json());
    expect(body.error).to.include({ code: 'invalid_input', field: 'since' });
  });

  it('replays far more than SSE_MAX_BUFFER_BYTES at the client pace instead of closing it as slow', async function () {
    const { app, session } = await start({ SSE_MAX_BUFFER_BYTES: String(64 * 1024) });
    const big = createPublisher(bed.client, { prefix: bed.prefix });
    const text = 'x'.repeat(1500);
    const ids: string[] = [];
    for (let index = 0; index < 1000; index += 1)
      ids.push(...(await big.publish({ type: 'event', level: 'info', title: `big ${index}`, text })));
    // ~1.6 MB of frames, 25 times the limit.
    const stream = open(`${app.url}/events?since=0-0`, session);
    await stream.waitFor((events) => events.length === 1000, 20_000, 'the whole replay');
    expect(stream.events.map((event) => event.id)).to.deep.equal(ids);
    expect(stream.opens).to.equal(1);
    expect((await app.metrics.slowConsumerCloses.get()).values[0]?.value ?? 0).to.equal(0);
  });
});
