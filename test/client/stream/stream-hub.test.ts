// The stream hub (what the SharedWorker runs) against a real worker and Redis, with the real
// `eventsource` client standing in for the browser's EventSource.
import { expect } from 'chai';
import { EventSource } from 'eventsource';
import { StreamHub, type AccessCheck, type HubSubscriber } from '../../../client/stream/stream-hub.ts';
import type { BoardSubscription } from '../../../client/stream/protocol.ts';
import { boardsResponseSchema } from '../../../client/state/boards.ts';
import type { HubMessage } from '../../../client/stream/protocol.ts';
import type { Envelope } from '../../../shared/events.ts';
import { createPublisher, type Publisher } from '../../../shared/publisher.ts';
import { login, type TestSession } from '../../helpers/auth.ts';
import { startTestApp, stopAll, uniquePrefix, type TestApp } from '../../helpers/app.ts';
import { startTestRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { until } from '../../helpers/sse-client.ts';
import { createClient } from 'redis';

interface RecordingSubscriber extends HubSubscriber {
  messages: HubMessage[];
  events(): Envelope[];
}

function recorder(): RecordingSubscriber {
  const messages: HubMessage[] = [];
  return {
    messages,
    send: (message) => messages.push(message),
    events: () => messages.flatMap((message) => (message.type === 'events' ? message.events : [])),
  };
}

/** A subscription to the main board from `since`. */
const onMain = (since: string | null): BoardSubscription[] => [{ board: 'main', since }];

describe('the shared stream hub', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let app: TestApp;
  let prefix: string;
  let client: ReturnType<typeof createClient>;
  let publisher: Publisher;
  let session: TestSession;
  let hub: StreamHub;

  before(async function () {
    redis = await startTestRedis();
  });
  after(async function () {
    await redis.close();
  });
  beforeEach(async function () {
    prefix = uniquePrefix();
    app = await startTestApp(redis.url, {
      PULSEBOARD_PREFIX: prefix,
      SSE_RETRY_MS: '200',
      SESSION_CHECK_MS: '200',
    });
    client = createClient({ url: redis.url });
    await client.connect();
    publisher = createPublisher(client, { prefix });
    session = await login(app.url, { redisUrl: redis.url, prefix });
    hub = new StreamHub({
      openSource: (path) =>
        new EventSource(`${app.url}${path}`, {
          fetch: (input, init) =>
            fetch(input, { ...init, headers: { ...(init?.headers ?? {}), ...session.headers } }),
        }),
      checkAccess: async (): Promise<AccessCheck> => {
        const response = await fetch(`${app.url}/api/boards`, { headers: session.headers });
        if (response.status === 401) return { kind: 'unauthorized' };
        const parsed = boardsResponseSchema.safeParse(await response.json().catch(() => undefined));
        if (!response.ok || !parsed.success) return { kind: 'unknown' };
        return { kind: 'visible', boards: new Set(parsed.data.boards.map((board) => board.name)) };
      },
      retryMinMs: 100,
    });
  });
  afterEach(async function () {
    hub.logout();
    await stopAll([app]);
    await client.quit();
  });

  const streams = (key?: string) =>
    app.hub.count((connection) => key === undefined || connection.topics.key === key);
  const live = (subscriber: RecordingSubscriber) =>
    until(
      () => subscriber.messages.some((message) => message.type === 'state' && message.state === 'live'),
      5000,
      'the stream to be live',
    );

  it('serves subscribers with different filters from one stream on the union of their topics', async function () {
    const statuses = recorder();
    const metrics = recorder();
    hub.subscribe(statuses, onMain('0-0'), ['status:api*']);
    hub.subscribe(metrics, onMain('0-0'), ['metric:cpu.*']);
    await live(metrics);
    await until(() => streams('metric:cpu.*,status:api*') === 1, 5000, 'the union stream');
    expect(streams()).to.equal(1);

    await publisher.publish({ type: 'status', service: 'api-1', state: 'down' });
    await publisher.publish({ type: 'metric', name: 'cpu.web', value: 5 });
    await publisher.publish({ type: 'status', service: 'db', state: 'down' });
    await until(() => statuses.events().length === 1 && metrics.events().length === 1, 5000, 'both events');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(statuses.events().map((event) => event.type === 'status' && event.service)).to.deep.equal([
      'api-1',
    ]);
    expect(metrics.events().map((event) => event.type === 'metric' && event.name)).to.deep.equal(['cpu.web']);
  });

  it('gives a late subscriber what followed its snapshot from the buffer, without a new stream', async function () {
    const first = recorder();
    hub.subscribe(first, onMain('0-0'), null);
    await live(first);
    const [snapshotId] = await publisher.publish({ type: 'event', level: 'info', title: 'in the snapshot' });
    await publisher.publish({ type: 'event', level: 'info', title: 'after the snapshot' });
    await until(() => first.events().length === 2, 5000, 'two events');

    const late = recorder();
    hub.subscribe(late, onMain(snapshotId!), null);
    expect(late.events().map((event) => event.type === 'event' && event.title)).to.deep.equal([
      'after the snapshot',
    ]);
    expect(streams()).to.equal(1);
  });

  it('replays what the old stream did not carry when a subscriber widens the topics, once each', async function () {
    const narrow = recorder();
    hub.subscribe(narrow, onMain('0-0'), ['status:api']);
    await live(narrow);
    await publisher.publish({ type: 'status', service: 'api', state: 'ok' });
    await until(() => narrow.events().length === 1, 5000, 'the api status');
    // The second tab's snapshot was read before this db status; the stream so far did not carry it.
    const [snapshotId] = await publisher.publish({ type: 'event', level: 'info', title: 'marker' });
    await publisher.publish({ type: 'status', service: 'db', state: 'down' });
    await publisher.publish({ type: 'status', service: 'api', state: 'down' });
    await until(() => narrow.events().length === 2, 5000, 'the second api status');

    const wide = recorder();
    hub.subscribe(wide, onMain(snapshotId!), ['status:*']);
    await until(() => wide.events().length === 2, 5000, 'db and api after the snapshot');
    await until(() => streams('status:*,status:api') === 1, 5000, 'the widened stream');
    await publisher.publish({ type: 'status', service: 'web', state: 'ok' });
    await until(() => wide.events().length === 3, 5000, 'a live event');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const services = (subscriber: RecordingSubscriber) =>
      subscriber.events().map((event) => (event.type === 'status' ? `${event.service}:${event.state}` : '?'));
    expect(services(wide).sort()).to.deep.equal(['api:down', 'db:down', 'web:ok']);
    expect(services(narrow)).to.deep.equal(['api:ok', 'api:down']);
    expect(streams()).to.equal(1);
  });

  it('tells every subscriber when the session is gone (the stream answered 401)', async function () {
    const one = recorder();
    const two = recorder();
    hub.subscribe(one, onMain('0-0'), null);
    hub.subscribe(two, onMain('0-0'), ['event:*']);
    await live(one);
    const response = await fetch(`${app.url}/api/logout`, { method: 'POST', headers: session.csrfHeaders });
    expect(response.status).to.equal(204);
    await until(
      () =>
        [one, two].every((subscriber) =>
          subscriber.messages.some((message) => message.type === 'unauthorized'),
        ),
      5000,
      'both to be told',
    );
    expect(streams()).to.equal(0);
    expect(hub.subscriberCount).to.equal(0);
  });

  it('tells the other subscribers when one logs out, and closes the stream', async function () {
    const one = recorder();
    const two = recorder();
    hub.subscribe(one, onMain('0-0'), null);
    hub.subscribe(two, onMain('0-0'), null);
    await live(one);
    hub.logout();
    expect(two.messages.at(-1)).to.deep.equal({ type: 'loggedOut' });
    await until(() => streams() === 0, 3000, 'the stream to close');
  });
});
