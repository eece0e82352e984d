// The stream hub (what the SharedWorker runs) against a real worker and Redis, with the real
// `eventsource` client standing in for the browser's EventSource.
import { expect } from 'chai';
import { EventSource } from 'eventsource';
import { StreamHub, type HubSubscriber, type SessionCheck } from '../../../client/stream/stream-hub.ts';
import type { HubMessage } from '../../../client/stream/protocol.ts';
import type { Envelope } from '../../../shared/events.ts';
import { createPublisher, type Publisher } from '../../../shared/publisher.ts';
import type { TestApp } from '../../helpers/app.ts';
import type { TestSession } from '../../helpers/auth.ts';
import { until } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';

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

describe('the shared stream hub', function () {
  this.timeout(30_000);
  const bed = useTestBed();
  let app: TestApp;
  let publisher: Publisher;
  let session: TestSession;
  let hub: StreamHub;

  beforeEach(async function () {
    app = await bed.startApp({ SSE_RETRY_MS: '200', SESSION_CHECK_MS: '200' });
    publisher = createPublisher(bed.client, { prefix: bed.prefix });
    session = await bed.login(app.url);
    hub = new StreamHub({
      openSource: (path) =>
        new EventSource(`${app.url}${path}`, {
          fetch: (input, init) =>
            fetch(input, { ...init, headers: { ...(init?.headers ?? {}), ...session.headers } }),
        }),
      checkSession: async (): Promise<SessionCheck> => {
        const response = await fetch(`${app.url}/api/session`, { headers: session.headers });
        return response.status === 401 ? 'unauthorized' : response.ok ? 'valid' : 'unknown';
      },
      retryMinMs: 100,
    });
  });
  afterEach(function () {
    hub.logout();
  });

  /** Open streams of the worker: all of them, or those with this topic key. */
  const streams = (key?: string) =>
    key === undefined ? app.hub.size : app.hub.count((connection) => connection.topics.key === key);
  const live = (subscriber: RecordingSubscriber) =>
    until(
      () => subscriber.messages.some((message) => message.type === 'state' && message.state === 'live'),
      5000,
      'the stream to be live',
    );

  it('serves subscribers with different filters from one stream on the union of their topics', async function () {
    const statuses = recorder();
    const metrics = recorder();
    hub.subscribe(statuses, ['status:api*'], '0-0');
    hub.subscribe(metrics, ['metric:cpu.*'], '0-0');
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
    hub.subscribe(first, null, '0-0');
    await live(first);
    const [snapshotId] = await publisher.publish({ type: 'event', level: 'info', title: 'in the snapshot' });
    await publisher.publish({ type: 'event', level: 'info', title: 'after the snapshot' });
    await until(() => first.events().length === 2, 5000, 'two events');

    const late = recorder();
    hub.subscribe(late, null, snapshotId!);
    expect(late.events().map((event) => event.type === 'event' && event.title)).to.deep.equal([
      'after the snapshot',
    ]);
    expect(streams()).to.equal(1);
  });

  it('replays what the old stream did not carry when a subscriber widens the topics, once each', async function () {
    const narrow = recorder();
    hub.subscribe(narrow, ['status:api'], '0-0');
    await live(narrow);
    await publisher.publish({ type: 'status', service: 'api', state: 'ok' });
    await until(() => narrow.events().length === 1, 5000, 'the api status');
    // The second tab's snapshot was read before this db status; the stream so far did not carry it.
    const [snapshotId] = await publisher.publish({ type: 'event', level: 'info', title: 'marker' });
    await publisher.publish({ type: 'status', service: 'db', state: 'down' });
    await publisher.publish({ type: 'status', service: 'api', state: 'down' });
    await until(() => narrow.events().length === 2, 5000, 'the second api status');

    const wide = recorder();
    hub.subscribe(wide, ['status:*'], snapshotId!);
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
    hub.subscribe(one, null, '0-0');
    hub.subscribe(two, ['event:*'], '0-0');
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
    hub.subscribe(one, null, '0-0');
    hub.subscribe(two, null, '0-0');
    await live(one);
    hub.logout();
    expect(two.messages.at(-1)).to.deep.equal({ type: 'loggedOut' });
    await until(() => streams() === 0, 3000, 'the stream to close');
  });
});
