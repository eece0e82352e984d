import type { ServerResponse } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect } from 'chai';
import type { Context } from 'koa';
import { sessionHandle } from '../../../server/auth/sessions.ts';
import type { RedisClient } from '../../../server/redis.ts';
import { sessionNames } from '../../../shared/keys.ts';
import { createPublisher } from '../../../shared/publisher.ts';
import { until } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { openRawStream } from '../../helpers/raw-stream.ts';
import { logIds } from './stream-helpers.ts';

/** V8's gc(), made reachable without starting mocha with --expose-gc. */
function collectGarbage(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/**
 * Takes weak references to the contexts' sessions and checks no body stream was set. A separate,
 * synchronous function, so no strong reference survives in the test's suspended async frame.
 */
function inspectContexts(contexts: WeakRef<Context>[], sessions: WeakRef<object>[]): void {
  for (const ref of contexts) {
    const ctx = ref.deref();
    // The session object and whatever Koa would have piped as a body are owned by the context.
    const session: unknown = ctx?.session;
    if (typeof session === 'object' && session !== null) sessions.push(new WeakRef(session));
    expect(ctx?.body ?? undefined, 'no body stream for Koa to pipe').to.equal(undefined);
  }
}

/**
 * Makes the session look renewed two minutes ago, so its next stream is due for the rolling renewal and
 * takes the Koa path (the fast path decides only sessions renewed within the last minute).
 */
async function ageSession(client: RedisClient, prefix: string, cookie: string): Promise<void> {
  const id = /pulseboard\.sid=([^;]+)/.exec(cookie)?.[1];
  if (id === undefined) throw new Error(`no session id in ${cookie}`);
  const key = sessionNames(prefix).session(sessionHandle(id));
  const stored = JSON.parse((await client.get(key)) ?? '{}') as { _expire: number };
  await client.set(key, JSON.stringify({ ...stored, _expire: stored._expire - 120_000 }), {
    XX: true,
    KEEPTTL: true,
  });
}

describe('light connections', function () {
  this.timeout(30_000);
  const bed = useTestBed();

  it('a stream on the fast path creates no Koa context at all', async function () {
    const app = await bed.startApp();
    let contexts = 0;
    const createContext = app.koa.createContext.bind(app.koa);
    app.koa.createContext = (req, res) => {
      if (req.url?.startsWith('/events')) contexts += 1;
      return createContext(req, res);
    };
    const session = await bed.login(app.url);
    const streams = await Promise.all(
      [1, 2, 3].map(() => openRawStream(`${app.url}/events`, { headers: session.headers }).opened),
    );
    for (const stream of streams) await stream.waitForText(/: pulseboard stream/);
    await until(() => app.hub.size === 3, 5000, 'three streams registered');
    expect(contexts, 'Koa contexts made for /events').to.equal(0);
    await createPublisher(bed.client, { prefix: bed.prefix }).publish({
      type: 'metric',
      name: 'm',
      value: 1,
    });
    const [id] = await logIds(bed.client, bed.prefix);
    for (const stream of streams) await stream.waitForText(new RegExp(`id: main:${id}\\n`));
    for (const stream of streams) stream.close();
    await until(() => app.hub.size === 0, 5000, 'the streams to leave the hub');
  });

  it('a stream on the Koa path keeps no Koa context, session or response body once its headers are out', async function () {
    const app = await bed.startApp();
    // Every request context the app creates for /events, held weakly.
    const contexts: WeakRef<Context>[] = [];
    const sessions: WeakRef<object>[] = [];
    const createContext = app.koa.createContext.bind(app.koa);
    app.koa.createContext = (req, res) => {
      const ctx = createContext(req, res);
      if (req.url?.startsWith('/events')) contexts.push(new WeakRef(ctx));
      return ctx;
    };
    const session = await bed.login(app.url);
    const streams = [];
    for (let index = 0; index < 3; index += 1) {
      await ageSession(bed.client, bed.prefix, session.headers.Cookie ?? '');
      const stream = await openRawStream(`${app.url}/events`, { headers: session.headers }).opened;
      await stream.waitForText(/: pulseboard stream/);
      streams.push(stream);
    }
    await until(() => app.hub.size === 3, 5000, 'three streams registered');
    expect(contexts).to.have.length(3);
    inspectContexts(contexts, sessions);
    expect(sessions).to.have.length(3);

    const gc = collectGarbage();
    for (let round = 0; round < 5; round += 1) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(
      contexts.filter((ref) => ref.deref() !== undefined),
      'Koa contexts still alive',
    ).to.have.length(0);
    expect(
      sessions.filter((ref) => ref.deref() !== undefined),
      'sessions still alive',
    ).to.have.length(0);

    // The streams are still live: an event published now reaches all three.
    await createPublisher(bed.client, { prefix: bed.prefix }).publish({
      type: 'metric',
      name: 'api.rps',
      value: 1,
    });
    const [id] = await logIds(bed.client, bed.prefix);
    for (const stream of streams) await stream.waitForText(new RegExp(`id: main:${id}\\n`));
  });

  it("a live stream's response keeps neither on-finished's listeners nor its header block", async function () {
    const app = await bed.startApp();
    const responses: WeakRef<ServerResponse>[] = [];
    app.server.prependListener('request', (req: { url?: string }, res: ServerResponse) => {
      if (req.url?.startsWith('/events')) responses.push(new WeakRef(res));
    });
    const session = await bed.login(app.url);
    // The Koa path: on-finished's listeners are Koa's.
    await ageSession(bed.client, bed.prefix, session.headers.Cookie ?? '');
    const stream = await openRawStream(`${app.url}/events`, { headers: session.headers }).opened;
    await stream.waitForText(/: pulseboard stream/);
    await until(() => app.hub.size === 1, 5000, 'the stream registered');
    const res = responses[0]?.deref();
    if (res === undefined) throw new Error('no /events response seen');
    const onFinishedListeners = [
      ...res.listeners('finish'),
      ...res.listeners('end'),
      ...(res.socket?.listeners('close') ?? []),
      ...(res.socket?.listeners('error') ?? []),
    ].filter((listener) => listener.name === 'onevent');
    expect(onFinishedListeners, "ee-first's listeners").to.have.length(0);
    // The socket still has Node's own error handler, so a socket error is no uncaught exception.
    expect(res.socket?.listenerCount('error')).to.be.greaterThan(0);
    expect(res.headersSent).to.equal(true);
    expect(String(Reflect.get(res, '_header')).length, 'the header block, once sent').to.be.below(16);

    // Still live, and still ends when the client goes.
    await createPublisher(bed.client, { prefix: bed.prefix }).publish({
      type: 'metric',
      name: 'm',
      value: 1,
    });
    const [id] = await logIds(bed.client, bed.prefix);
    await stream.waitForText(new RegExp(`id: main:${id}\\n`));
    stream.close();
    await until(() => app.hub.size === 0, 5000, 'the stream to leave the hub');

    // The fast path (the session was renewed by the Koa path's stream a moment ago): no header block kept.
    const fast = await openRawStream(`${app.url}/events`, { headers: session.headers }).opened;
    await fast.waitForText(/: pulseboard stream/);
    await until(() => app.hub.size === 1, 5000, 'the fast stream registered');
    const fastRes = responses[1]?.deref();
    expect(fastRes?.headersSent).to.equal(true);
    expect(String(Reflect.get(fastRes ?? {}, '_header')).length, 'the header block, once sent').to.be.below(
      16,
    );
    fast.close();
  });

  it('idle streams share their close listeners and their emptied header lists: none of them per stream', async function () {
    const app = await bed.startApp();
    const responses: WeakRef<ServerResponse>[] = [];
    app.server.prependListener('request', (req: { url?: string }, res: ServerResponse) => {
      if (req.url?.startsWith('/events')) responses.push(new WeakRef(res));
    });
    const session = await bed.login(app.url);
    const streams = await Promise.all(
      [1, 2].map(() => openRawStream(`${app.url}/events`, { headers: session.headers }).opened),
    );
    for (const stream of streams) await stream.waitForText(/: pulseboard stream/);
    await until(() => app.hub.size === 2, 5000, 'two streams registered');
    const [first, second] = responses.map((ref) => ref.deref()?.rawListeners('close') ?? []);
    // The stream's, the quota lease's and the worker's in-flight set's, at least.
    expect(first, 'close listeners of the first response').to.have.length.of.at.least(3);
    expect(second, 'close listeners of the second response').to.have.length(first?.length ?? 0);
    // The same function objects on both responses: `rawListeners` shows a `once` wrapper (one per
    // response) instead of the function it wraps, and a closure would be a new function per response.
    first?.forEach((listener, index) => {
      expect(listener === second?.[index], `close listener ${index} (${listener.name}) is shared`).to.equal(
        true,
      );
    });

    // Their sockets' close listeners too (the worker's connection count's): shared, none per socket. Node's
    // http server binds its own per socket (`bound socketOnClose`): Node's, not ours.
    const ours = (ref: WeakRef<ServerResponse> | undefined) =>
      (ref?.deref()?.socket?.rawListeners('close') ?? []).filter(
        (listener) => listener.name !== 'bound socketOnClose',
      );
    const [firstSocket, secondSocket] = [ours(responses[0]), ours(responses[1])];
    expect(firstSocket, 'our close listeners of the first socket').to.have.length.of.at.least(1);
    expect(secondSocket).to.have.length(firstSocket.length);
    firstSocket.forEach((listener, index) => {
      expect(
        listener === secondSocket[index],
        `socket close listener ${index} (${listener.name}) is shared`,
      ).to.equal(true);
    });

    // The requests' header and trailer lists: one empty list for every stream.
    const [firstRequest, secondRequest] = responses.map((ref) => ref.deref()?.req);
    expect(firstRequest?.rawHeaders).to.deep.equal([]);
    expect(firstRequest?.rawHeaders === secondRequest?.rawHeaders, 'one shared header list').to.equal(true);
    expect(firstRequest?.rawTrailers === firstRequest?.rawHeaders, 'the trailers share it').to.equal(true);

    // The shared listener still finds its stream: both leave the hub when their clients go.
    for (const stream of streams) stream.close();
    await until(() => app.hub.size === 0, 5000, 'the streams to leave the hub');
  });
});
