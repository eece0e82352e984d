// Public status pages on the wire (docs/status-pages.md): no session needed; the page, the stream and the
// badge carry only the chosen services' state, message and since, whatever else is published meanwhile
// (private services, metrics, events, other boards); unknown and non-public boards answer one 404;
// settings changes reach open streams; the rate limit and the stream cap answer clearly.
import { expect } from 'chai';
import { BoardStore } from '../../../server/auth/boards.ts';
import { publishControl } from '../../../server/bus/control.ts';
import { boardKeys, redisNames } from '../../../shared/keys.ts';
import { createPublisher, type Publisher } from '../../../shared/publisher.ts';
import { openRawStream, type RawStream } from '../../helpers/raw-stream.ts';
import { sleep } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';

/** Text that must never leave the server on a public answer. */
const SECRETS = [
  'secret-service',
  'SECRET-MESSAGE',
  'secret.metric',
  'SECRET-EVENT',
  'other-board',
  'OTHER-SECRET',
];

describe('public status pages (server, on the wire)', function () {
  this.timeout(30_000);
  const bed = useTestBed();
  let publisher: Publisher;
  let boards: BoardStore;
  const streams: RawStream[] = [];

  beforeEach(async function () {
    publisher = createPublisher(bed.client, { prefix: bed.prefix });
    boards = new BoardStore(bed.client, redisNames(bed.prefix));
    await boards.add('shop', 'Shop status');
    await boards.add('other-board', 'Other');
  });
  afterEach(function () {
    for (const stream of streams.splice(0)) stream.close();
  });

  function open(url: string, options: Parameters<typeof openRawStream>[1] = {}): RawStream {
    const stream = openRawStream(url, options);
    streams.push(stream);
    return stream;
  }

  async function goPublic(board: string, services: string[], embedOrigins: string[] = []): Promise<void> {
    await boards.setPublic(board, { services, embedOrigins });
    await publishControl(bed.client, redisNames(bed.prefix), { type: 'public-changed', board });
  }

  /** Everything a public reader must never see, published on the board and on another. */
  async function publishPrivate(): Promise<void> {
    await publisher.publish({
      type: 'status',
      board: 'shop',
      service: 'secret-service',
      state: 'down',
      message: 'SECRET-MESSAGE',
    });
    await publisher.publish({ type: 'metric', board: 'shop', name: 'secret.metric', value: 42 });
    await publisher.publish({
      type: 'event',
      board: 'shop',
      level: 'error',
      title: 'SECRET-EVENT',
      service: 'api',
    });
    await publisher.publish({
      type: 'status',
      board: 'other-board',
      service: 'api',
      state: 'down',
      message: 'OTHER-SECRET',
    });
  }

  function expectNoSecrets(text: string, where: string): void {
    for (const secret of SECRETS) expect(text, `${where} contains ${secret}`).not.to.include(secret);
  }

  it('serves the chosen services without a session, and nothing else, in its HTML', async function () {
    const app = await bed.startApp();
    await publisher.publish({
      type: 'status',
      board: 'shop',
      service: 'api',
      state: 'ok',
      message: 'all good <b>',
    });
    await publisher.publish({
      type: 'status',
      board: 'shop',
      service: 'web',
      state: 'degraded',
      group: 'edge',
      ttl: 60,
    });
    await publishPrivate();
    await goPublic('shop', ['api', 'web', 'checkout']);

    const response = await fetch(`${app.url}/status/shop`);
    expect(response.status).to.equal(200);
    expect(response.headers.get('content-type')).to.match(/^text\/html/);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp)
      .to.include("script-src 'self'")
      .and.to.include("style-src 'self'")
      .and.to.include("frame-ancestors 'none'");
    expect(response.headers.get('x-frame-options')).to.equal('DENY');
    expect(response.headers.get('set-cookie')).to.equal(null);
    const html = await response.text();
    expect(html).to.include('<h1 class="status-title">Shop status</h1>');
    expect(html).to.match(/data-service="api" data-state="ok"/);
    expect(html).to.include('all good &lt;b&gt;');
    expect(html).to.match(/data-service="web" data-state="degraded"/);
    expect(html).to.match(/data-service="checkout" data-state="unknown"/);
    expect(html).to.match(/id="status-overall"[^>]*data-state="degraded"/);
    expect(html).not.to.include('edge').and.not.to.include('ttl');
    expectNoSecrets(html, 'the page');
    expect(html).not.to.match(/<script(?![^>]*src=)/, 'an inline script');
    expect(html).not.to.include('style=');
  });

  it('answers one 404 for an unknown board, a board that is not public and a malformed name', async function () {
    const app = await bed.startApp();
    const answers = await Promise.all(
      ['/status/shop', '/status/no-such-board', '/status/NOT_A_BOARD'].map(async (path) => {
        const response = await fetch(`${app.url}${path}`);
        return {
          status: response.status,
          type: response.headers.get('content-type'),
          body: await response.text(),
        };
      }),
    );
    expect(answers.map(({ status }) => status)).to.deep.equal([404, 404, 404]);
    expect(new Set(answers.map(({ body }) => body)).size).to.equal(1);
    expect(new Set(answers.map(({ type }) => type)).size).to.equal(1);
    const events = await Promise.all(
      [
        '/status/shop/events',
        '/status/no-such-board/events',
        '/status/shop/badge.svg',
        '/status/nope/badge.svg',
      ].map(async (path) => {
        const response = await fetch(`${app.url}${path}`);
        return `${response.status} ${await response.text()}`;
      }),
    );
    expect(new Set(events).size).to.equal(1);
    expect(events[0]).to.match(/^404 /);
  });

  it('streams only the chosen services, one frame per change, with the public fields alone', async function () {
    const app = await bed.startApp();
    await goPublic('shop', ['api']);
    await publisher.publish({ type: 'status', board: 'shop', service: 'api', state: 'ok', message: 'first' });
    const stream = open(`${app.url}/status/shop/events`);
    expect(await stream.status).to.equal(200);
    const headers = (await stream.response).headers;
    expect(headers['content-type']).to.match(/^text\/event-stream/);
    expect(headers['content-security-policy']).to.include("frame-ancestors 'none'");
    await stream.waitForText(/event: snapshot\ndata: .*"first"/);
    await publishPrivate();
    const [id] = await publisher.publish({
      type: 'status',
      board: 'shop',
      service: 'api',
      state: 'down',
      message: 'second',
      group: 'edge',
      ttl: 30,
    });
    await stream.waitForText(/event: status/);
    await sleep(200); // room for anything else to (wrongly) arrive
    const text = stream.text();
    expectNoSecrets(text, 'the stream');
    const frames = text.split('\n\n').filter((frame) => frame.includes('event: status'));
    expect(frames).to.have.length(1);
    const data = JSON.parse(frames[0]?.split('data: ')[1] ?? '{}') as Record<string, unknown>;
    expect(Object.keys(data).sort()).to.deep.equal(['id', 'message', 'service', 'since', 'state']);
    expect(data).to.include({ service: 'api', state: 'down', message: 'second', id });
    expect(frames[0]).to.include(`id: ${id}\n`);
  });

  it('keeps an idle stream alive with heartbeats and ends it on shutdown', async function () {
    const app = await bed.startApp({ HEARTBEAT_MS: '1000' });
    await goPublic('shop', ['api']);
    const stream = open(`${app.url}/status/shop/events`);
    await stream.waitForText(/event: snapshot/);
    await stream.waitForText(/\nevent: ping\ndata: \{\}\n\n/, 3000);
    expect(app.publicStatus.hub.size).to.equal(1);
    await app.stop();
    expect(await stream.ended).to.be.above(0);
  });

  it('takes a removed service and a page turned off out of open streams at once', async function () {
    const app = await bed.startApp();
    await goPublic('shop', ['api', 'web']);
    await publisher.publish({
      type: 'status',
      board: 'shop',
      service: 'web',
      state: 'ok',
      message: 'WEB-WAS-PUBLIC',
    });
    const stream = open(`${app.url}/status/shop/events`);
    await stream.waitForText(/WEB-WAS-PUBLIC/);
    await goPublic('shop', ['api']);
    await stream.waitForText(/event: snapshot\ndata: \{"services":\["api"\]/);
    const before = stream.text().length;
    await publisher.publish({
      type: 'status',
      board: 'shop',
      service: 'web',
      state: 'down',
      message: 'WEB-NOW-PRIVATE',
    });
    await publisher.publish({
      type: 'status',
      board: 'shop',
      service: 'api',
      state: 'ok',
      message: 'api-still-public',
    });
    await stream.waitForText(/api-still-public/);
    expect(stream.text().slice(before)).not.to.include('WEB-NOW-PRIVATE');

    await boards.clearPublic('shop');
    const ended = stream.ended;
    await publishControl(bed.client, redisNames(bed.prefix), { type: 'public-changed', board: 'shop' });
    const published = performance.now();
    const endedAt = await ended;
    expect(endedAt - published, 'ms until the stream ended').to.be.below(1000);
    expect((await fetch(`${app.url}/status/shop`)).status).to.equal(404);
  });

  it('serves a badge of the overall state with README-friendly cache headers', async function () {
    const app = await bed.startApp();
    await goPublic('shop', ['api', 'web']);
    await publisher.publish({ type: 'status', board: 'shop', service: 'api', state: 'ok' });
    await publishPrivate();
    const first = await fetch(`${app.url}/status/shop/badge.svg`);
    expect(first.status).to.equal(200);
    expect(first.headers.get('content-type')).to.match(/^image\/svg\+xml/);
    expect(first.headers.get('cache-control')).to.equal('public, max-age=60');
    expect(first.headers.get('cross-origin-resource-policy')).to.equal('cross-origin');
    expect(first.headers.get('content-security-policy')).to.include("default-src 'self'");
    const etag = first.headers.get('etag') ?? '';
    expect(etag).to.match(/^"[\w-]+"$/);
    const svg = await first.text();
    expect(svg).to.include('>operational<');
    expectNoSecrets(svg, 'the badge');
    const again = await fetch(`${app.url}/status/shop/badge.svg`, { headers: { 'If-None-Match': etag } });
    expect(again.status).to.equal(304);
    await publisher.publish({ type: 'status', board: 'shop', service: 'web', state: 'down' });
    const changed = await fetch(`${app.url}/status/shop/badge.svg`, { headers: { 'If-None-Match': etag } });
    expect(changed.status).to.equal(200);
    expect(await changed.text()).to.include('>down<');
  });

  it('lets only the configured origins frame the embeddable page', async function () {
    const app = await bed.startApp();
    await goPublic('shop', ['api']);
    const closed = await fetch(`${app.url}/status/shop/embed`);
    expect(closed.status).to.equal(200);
    expect(closed.headers.get('content-security-policy')).to.include("frame-ancestors 'none'");
    await goPublic('shop', ['api'], ['https://example.com', 'https://*.example.org']);
    await sleep(100);
    const open = await fetch(`${app.url}/status/shop/embed`);
    const csp = open.headers.get('content-security-policy') ?? '';
    expect(csp).to.include('frame-ancestors https://example.com https://*.example.org');
    expect(csp).to.include("script-src 'self'");
    expect(open.headers.get('x-frame-options')).to.equal(null);
    expect(await open.text()).to.include('status-embed');
    // The full page stays unframeable.
    expect((await fetch(`${app.url}/status/shop`)).headers.get('content-security-policy')).to.include(
      "frame-ancestors 'none'",
    );
    await expectRejection(
      boards.setPublic('shop', { services: [], embedOrigins: ['https://a.com; script-src *'] }),
    );
  });

  it('answers 429 with Retry-After and a reason past the per-address rate', async function () {
    const app = await bed.startApp({ STATUS_RATE_PER_MINUTE: '5' });
    await goPublic('shop', ['api']);
    const statuses: number[] = [];
    for (let index = 0; index < 5; index += 1)
      statuses.push((await fetch(`${app.url}/status/shop/badge.svg`)).status);
    expect(statuses).to.deep.equal([200, 200, 200, 200, 200]);
    const refused = await fetch(`${app.url}/status/shop`);
    expect(refused.status).to.equal(429);
    expect(Number(refused.headers.get('retry-after'))).to.be.within(1, 60);
    const body = (await refused.json()) as { error: { code: string; message: string } };
    expect(body.error.code).to.equal('rate_limited');
    expect(body.error.message).to.match(/too many status page requests from your address/);
    // Another address is not held back by the first one's count.
    const other = open(`${app.url}/status/shop/events`, { localAddress: '127.0.0.2' });
    expect(await other.status).to.equal(200);
    // The dashboard is untouched by the public limit.
    expect((await fetch(`${app.url}/login`)).status).to.not.equal(429);
  });

  it('answers 503 with Retry-After past the worker’s stream cap, and admits again once one closes', async function () {
    const app = await bed.startApp({ STATUS_MAX_STREAMS: '2' });
    await goPublic('shop', ['api']);
    const first = open(`${app.url}/status/shop/events`);
    const second = open(`${app.url}/status/shop/events`);
    await first.waitForText(/event: snapshot/);
    await second.waitForText(/event: snapshot/);
    const third = await fetch(`${app.url}/status/shop/events`);
    expect(third.status).to.equal(503);
    expect(third.headers.get('retry-after')).to.equal('10');
    const body = (await third.json()) as { error: { code: string; message: string } };
    expect(body.error.code).to.equal('status_streams_full');
    first.close();
    await waitFor(() => app.publicStatus.hub.size === 1);
    const fourth = open(`${app.url}/status/shop/events`);
    expect(await fourth.status).to.equal(200);
  });

  it('forgets a removed board’s public settings with the board', async function () {
    await goPublic('shop', ['api']);
    expect(await bed.client.exists(boardKeys(bed.prefix, 'shop').publicStatus)).to.equal(1);
    await boards.remove('shop');
    expect(await bed.client.exists(boardKeys(bed.prefix, 'shop').publicStatus)).to.equal(0);
    await expectRejection(boards.setPublic('shop', { services: ['api'], embedOrigins: [] }));
  });
});

async function expectRejection(promise: Promise<unknown>): Promise<void> {
  let failed = false;
  try {
    await promise;
  } catch {
    failed = true;
  }
  expect(failed, 'expected a rejection').to.equal(true);
}

async function waitFor(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(10);
  }
}
