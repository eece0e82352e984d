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
import type { TestApp } from '../../helpers/app.ts';
import type { TestSession } from '../../helpers/auth.ts';
import { until } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { BoardStore } from '../../../server/auth/boards.ts';
import { UserStore } from '../../../server/auth/users.ts';
import { publishControl } from '../../../server/bus/control.ts';
import { boardKeys, redisNames } from '../../../shared/keys.ts';
import type { RedisClient } from '../../../server/redis.ts';

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
  const bed = useTestBed();
  let app: TestApp;
  let prefix: string;
  let client: RedisClient;
  let publisher: Publisher;
  let session: TestSession;
  let hub: StreamHub;

  beforeEach(async function () {
    ({ prefix, client } = bed);
    app = await bed.startApp({ SSE_RETRY_MS: '200', SESSION_CHECK_MS: '200' });
    publisher = createPublisher(client, { prefix });
    const boards = new BoardStore(client, redisNames(prefix));
    await boards.add('payments');
    await boards.add('edge');
    await boards.add('secret');
    session = await bed.login(app.url, { boards: ['main', 'payments', 'edge'] });
    hub = new StreamHub({
      openSource,
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
  afterEach(function () {
    hub.logout();
  });

  /** The worker's stream at `path`, opened with the test session's cookie. */
  const openSource = (path: string) =>
    new EventSource(`${app.url}${path}`, {
      fetch: (input, init) =>
        fetch(input, { ...init, headers: { ...(init?.headers ?? {}), ...session.headers } }),
    });

  /** Publishes `count` events on `board`, titled 0, 1, …; returns their ids in order. */
  async function publishNumbered(board: string, count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let index = 0; index < count; index += 1) {
      const [id] = await publisher.publish({ type: 'event', board, level: 'info', title: `${index}` });
      ids.push(id!);
    }
    return ids;
  }

  /** Open streams of the worker: all of them, or those with this topic key. */
  const streams = (key?: string) =>
    key === undefined ? app.hub.size : app.hub.count((connection) => connection.topics.key === key);
  const streamsOf = (boards: string) => app.hub.count((connection) => connection.boards.join(',') === boards);
  const titles = (subscriber: RecordingSubscriber) =>
    subscriber.events().map((event) => (event.type === 'event' ? `${event.board}:${event.title}` : '?'));
  const removed = (subscriber: RecordingSubscriber) =>
    subscriber.messages.flatMap((message) => (message.type === 'boardsRemoved' ? message.boards : []));
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

  it('carries two boards on one stream; adding a board mid-burst reopens it at the cursor, nothing missed or twice', async function () {
    const payments = recorder();
    hub.subscribe(payments, [{ board: 'payments', since: '0-0' }], null);
    await live(payments);
    const titlesSent = Array.from({ length: 60 }, (_, index) => `p${index}`);
    const burst = (async () => {
      for (const title of titlesSent) {
        await publisher.publish({ type: 'event', board: 'payments', level: 'info', title });
      }
    })();
    await until(() => payments.events().length >= 10, 5000, 'the burst to start');
    // Published before the second subscriber's snapshot id: replayed by the reopened stream.
    await publisher.publish({ type: 'event', board: 'edge', level: 'info', title: 'e0' });
    const edge = recorder();
    hub.subscribe(edge, [{ board: 'edge', since: '0-0' }], null);
    await burst;
    await publisher.publish({ type: 'event', board: 'edge', level: 'info', title: 'e1' });
    await until(
      () => payments.events().length >= 60 && edge.events().length >= 2,
      5000,
      'every event of both boards',
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(titles(payments)).to.deep.equal(titlesSent.map((title) => `payments:${title}`));
    expect(titles(edge)).to.deep.equal(['edge:e0', 'edge:e1']);
    expect(streamsOf('edge,payments')).to.equal(1);
    expect(streams()).to.equal(1);
  });

  it('tells the subscribers of a board that left the stream (grant revoked), and carries on without it', async function () {
    const payments = recorder();
    const edge = recorder();
    hub.subscribe(payments, [{ board: 'payments', since: '0-0' }], null);
    hub.subscribe(edge, [{ board: 'edge', since: '0-0' }], ['event:*']);
    await live(payments);
    await until(() => streamsOf('edge,payments') === 1, 5000, 'one stream for both boards');

    const names = redisNames(prefix);
    await new UserStore(client, names).updateBoards(session.username, (boards) =>
      boards.filter((board) => board !== 'edge'),
    );
    await publishControl(client, names, { type: 'access-changed', userName: session.username });
    await until(() => removed(edge).includes('edge'), 3000, 'the edge subscriber to be told');
    expect(removed(payments)).to.deep.equal([]);
    await until(() => streamsOf('payments') === 1 && streams() === 1, 5000, 'the stream without edge');

    await publisher.publish({ type: 'event', board: 'edge', level: 'info', title: 'not for us' });
    await publisher.publish({ type: 'event', board: 'payments', level: 'info', title: 'still here' });
    await until(() => payments.events().length === 1, 5000, 'the payments event');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(titles(payments)).to.deep.equal(['payments:still here']);
    expect(edge.events()).to.deep.equal([]);
  });

  it('drops a board the server refuses (403) and reopens with the others', async function () {
    const payments = recorder();
    const secret = recorder();
    hub.subscribe(payments, [{ board: 'payments', since: '0-0' }], null);
    await live(payments);
    hub.subscribe(secret, [{ board: 'secret', since: '0-0' }], null);
    await until(() => removed(secret).includes('secret'), 5000, 'the secret subscriber to be told');
    await until(() => streamsOf('payments') === 1, 5000, 'the stream to carry payments again');
    await publisher.publish({ type: 'event', board: 'payments', level: 'info', title: 'after' });
    await until(() => titles(payments).includes('payments:after'), 5000, 'a live event');
    expect(secret.events()).to.deep.equal([]);
    expect(secret.messages.some((message) => message.type === 'unauthorized')).to.equal(false);
  });

  it('tells only the subscribers of a board the server cannot resume (reset naming it) to refetch', async function () {
    const ids = await publishNumbered('payments', 5);
    await client.xTrim(boardKeys(prefix, 'payments').log, 'MAXLEN', 2);
    const edge = recorder();
    hub.subscribe(edge, [{ board: 'edge', since: '0-0' }], null);
    await live(edge);
    const payments = recorder();
    hub.subscribe(payments, [{ board: 'payments', since: ids[0]! }], null);
    await until(
      () => payments.messages.some((message) => message.type === 'reset' && message.board === 'payments'),
      5000,
      'a reset naming payments',
    );
    expect(edge.messages.some((message) => message.type === 'reset')).to.equal(false);
  });

  it('resets a late subscriber whose snapshot is older than what the buffer holds of its board', async function () {
    const small = new StreamHub({
      openSource,
      checkAccess: async () => ({ kind: 'unknown' }),
      bufferSize: 4,
    });
    try {
      const first = recorder();
      small.subscribe(first, [{ board: 'payments', since: '0-0' }], null);
      await live(first);
      const ids = await publishNumbered('payments', 8);
      await until(() => first.events().length === 8, 5000, 'eight events');
      const behind = recorder();
      small.subscribe(behind, [{ board: 'payments', since: ids[1]! }], null);
      // (`state` and `alive` say how the stream is; the rest is what this subscriber must do.)
      expect(
        behind.messages.filter((message) => message.type !== 'state' && message.type !== 'alive'),
      ).to.deep.equal([{ type: 'reset', board: 'payments' }]);
      const recent = recorder();
      small.subscribe(recent, [{ board: 'payments', since: ids[5]! }], null);
      expect(titles(recent)).to.deep.equal(['payments:6', 'payments:7']);
    } finally {
      small.logout();
    }
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
