// The stream hub's liveness (docs/dashboard.md, "Updated N s ago and the stale banner", "Background
// tabs, phones and the back/forward cache"): heartbeats reach subscribers as `alive` with the server's
// period, and `reconnect()` reopens the stream from its positions with nothing missed or doubled.
import { expect } from 'chai';
import { EventSource } from 'eventsource';
import { StreamHub, type HubSubscriber } from '../../../client/stream/stream-hub.ts';
import type { HubMessage } from '../../../client/stream/protocol.ts';
import { createPublisher } from '../../../shared/publisher.ts';
import type { TestApp } from '../../helpers/app.ts';
import { sleep, until } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';

describe('the shared stream hub: liveness and reconnect', function () {
  this.timeout(30_000);
  const bed = useTestBed();
  let app: TestApp;
  let hub: StreamHub;
  const messages: HubMessage[] = [];
  const subscriber: HubSubscriber = { send: (message) => messages.push(message) };
  let opened = 0;

  beforeEach(async function () {
    messages.length = 0;
    opened = 0;
    app = await bed.startApp({ SSE_RETRY_MS: '200', HEARTBEAT_MS: '1000' });
    const session = await bed.login(app.url);
    hub = new StreamHub({
      openSource: (path) => {
        opened += 1;
        return new EventSource(`${app.url}${path}`, {
          fetch: (input, init) =>
            fetch(input, { ...init, headers: { ...(init?.headers ?? {}), ...session.headers } }),
        });
      },
      checkAccess: async () => ({ kind: 'unknown' }),
    });
  });
  afterEach(function () {
    hub.logout();
  });

  const alive = () => messages.filter((message) => message.type === 'alive');

  it('tells subscribers the stream is alive, with the heartbeat period, on open and on each heartbeat', async function () {
    hub.subscribe(subscriber, [{ board: 'main', since: null }], null);
    await until(() => alive().length >= 1, 5000, 'alive on open');
    // An idle stream: only heartbeats arrive, about one a second.
    await until(() => alive().some((message) => message.heartbeatMs === 1000), 5000, 'a heartbeat');
    const before = alive().length;
    await sleep(2600);
    expect(alive().length - before).to.be.within(1, 4);
  });

  it('reconnect() reopens the stream from its positions: nothing missed, nothing twice', async function () {
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    hub.subscribe(subscriber, [{ board: 'main', since: null }], null);
    await until(
      () => messages.some((message) => message.type === 'state' && message.state === 'live'),
      5000,
      'live',
    );
    const titles: string[] = [];
    for (let index = 0; index < 40; index += 1) {
      const title = `t${index}`;
      titles.push(title);
      await publisher.publish({ type: 'event', level: 'info', title });
      if (index % 10 === 5) hub.reconnect();
      await sleep(20);
    }
    const received = () =>
      messages.flatMap((message) =>
        message.type === 'events'
          ? message.events.map((event) => (event.type === 'event' ? event.title : ''))
          : [],
      );
    await until(() => received().length >= titles.length, 5000, 'every event');
    await sleep(300);
    expect(received()).to.deep.equal(titles);
    expect(opened).to.equal(5);
  });
});
