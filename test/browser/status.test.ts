// A public status page in real Chromium (docs/status-pages.md): no session, live within a second, nothing
// private on the page while private data is published, complete with JavaScript off, catches up after a
// server restart, no CSP violation or console error, and phones fit.
import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { BoardStore } from '../../server/auth/boards.ts';
import { publishControl } from '../../server/bus/control.ts';
import type { Pulseboard } from '../../server/pulseboard.ts';
import { redisNames } from '../../shared/keys.ts';
import { sleep } from '../helpers/sse-client.ts';
import { closeContext, pageProblems, watchedPage, type PageProblems } from './helpers/chromium.ts';
import { startEnvironmentAndBrowser, type BrowserEnvironment } from './helpers/environment.ts';

const SECRETS = ['secret-service', 'SECRET-MESSAGE', 'secret.metric', 'SECRET-EVENT', 'OTHER-SECRET'];

describe('a public status page in Chromium', function () {
  this.timeout(60_000);
  let env: BrowserEnvironment;
  let browser: Browser;
  let app: Pulseboard;
  let context: BrowserContext | undefined;
  let problems: PageProblems;

  before(async function () {
    ({ env, browser } = await startEnvironmentAndBrowser());
    const boards = new BoardStore(env.client, redisNames(env.prefix));
    await boards.add('shop', 'Shop');
    await boards.add('other', 'Other');
    await boards.setPublic('shop', { services: ['api', 'checkout', 'search'], embedOrigins: [] });
    await env.publisher.publish({
      type: 'status',
      board: 'shop',
      service: 'api',
      state: 'ok',
      message: 'all good',
    });
    await env.publisher.publish({
      type: 'status',
      board: 'shop',
      service: 'checkout',
      state: 'degraded',
      message: 'slow card payments',
    });
    app = await env.startApp();
  });
  beforeEach(function () {
    problems = pageProblems();
  });
  afterEach(async function () {
    await closeContext(context);
    context = undefined;
  });
  after(async function () {
    await browser?.close();
    await env?.close();
  });

  async function publishPrivate(): Promise<void> {
    const { publisher } = env;
    await publisher.publish({
      type: 'status',
      board: 'shop',
      service: 'secret-service',
      state: 'down',
      message: 'SECRET-MESSAGE',
    });
    await publisher.publish({ type: 'metric', board: 'shop', name: 'secret.metric', value: 1 });
    await publisher.publish({
      type: 'event',
      board: 'shop',
      level: 'error',
      title: 'SECRET-EVENT',
      service: 'api',
    });
    await publisher.publish({
      type: 'status',
      board: 'other',
      service: 'api',
      state: 'down',
      message: 'OTHER-SECRET',
    });
  }

  const stateOf = (page: Page, service: string) =>
    page.locator(`.status-service[data-service="${service}"]`).getAttribute('data-state');

  it('needs no session and shows a change of a shown service within a second, nothing private', async function () {
    context = await browser.newContext();
    const page = await watchedPage(context, problems);
    const response = await page.goto(`${app.url}/status/shop`);
    expect(response?.status()).to.equal(200);
    expect(await context.cookies()).to.deep.equal([]);
    await page
      .locator('#status-updated', { hasText: /^Live · updated just now$/ })
      .waitFor({ timeout: 5000 });
    expect(await page.locator('.status-name').allTextContents()).to.deep.equal(['api', 'checkout', 'search']);
    expect(await page.locator('#status-overall').getAttribute('data-state')).to.equal('degraded');

    await publishPrivate();
    const delays: number[] = [];
    for (const [state, message] of [
      ['down', 'api is down'],
      ['ok', 'api is back'],
      ['maintenance', 'api upgrade'],
    ] as const) {
      const start = performance.now();
      await env.publisher.publish({ type: 'status', board: 'shop', service: 'api', state, message });
      await page
        .locator('.status-service[data-service="api"] .status-message', { hasText: message })
        .waitFor({ timeout: 1000 });
      delays.push(performance.now() - start);
      expect(await stateOf(page, 'api')).to.equal(state);
    }
    expect(Math.max(...delays), `delays ${delays.map(Math.round).join(', ')} ms`).to.be.below(1000);
    expect(await page.locator('#status-overall').getAttribute('data-state')).to.equal('degraded');
    const html = await page.content();
    for (const secret of SECRETS) expect(html).not.to.include(secret);
    expect(problems.list).to.deep.equal([]);
  });

  it('shows the current states with JavaScript disabled', async function () {
    await env.publisher.publish({
      type: 'status',
      board: 'shop',
      service: 'search',
      state: 'down',
      message: 'index rebuild failed',
    });
    context = await browser.newContext({ javaScriptEnabled: false });
    const page = await watchedPage(context, problems);
    await page.goto(`${app.url}/status/shop`);
    expect(await stateOf(page, 'search')).to.equal('down');
    expect(await page.locator('.status-service[data-service="search"] .status-state').textContent()).to.equal(
      'Down',
    );
    expect(
      await page.locator('.status-service[data-service="search"] .status-message').textContent(),
    ).to.equal('index rebuild failed');
    expect(await page.locator('.status-service[data-service="search"] .status-since').textContent()).to.match(
      /^since \d{4}-\d\d-\d\d \d\d:\d\d UTC$/,
    );
    expect(await page.locator('#status-overall-label').textContent()).to.equal('Some systems down');
    // Styled: the stylesheet loads without JavaScript.
    const dot = await page
      .locator('.status-service[data-service="search"] .status-dot')
      .evaluate((node) => getComputedStyle(node).borderRadius);
    expect(dot).to.equal('50%');
    expect(problems.list).to.deep.equal([]);
  });

  it('follows a service taken off the page and catches up after a server restart', async function () {
    context = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: 'dark' });
    const page = await watchedPage(context, problems);
    await page.goto(`${app.url}/status/shop`);
    await page
      .locator('#status-updated', { hasText: /^Live · updated just now$/ })
      .waitFor({ timeout: 5000 });
    // Fits a phone: nothing wider than the screen.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).to.be.at.most(390);

    const boards = new BoardStore(env.client, redisNames(env.prefix));
    await boards.setPublic('shop', { services: ['api', 'checkout'], embedOrigins: [] });
    await publishControl(env.client, redisNames(env.prefix), { type: 'public-changed', board: 'shop' });
    await page
      .locator('.status-service[data-service="search"]')
      .waitFor({ state: 'detached', timeout: 2000 });

    const { port } = app;
    await app.stop();
    await page.locator('#status-updated[data-connection="reconnecting"]').waitFor({ timeout: 5000 });
    expect(await page.locator('#status-updated').textContent()).to.match(/^Reconnecting… · updated /);
    await env.publisher.publish({
      type: 'status',
      board: 'shop',
      service: 'checkout',
      state: 'ok',
      message: 'payments fixed',
    });
    app = await env.startApp({ port });
    await page
      .locator('.status-service[data-service="checkout"] .status-message', { hasText: 'payments fixed' })
      .waitFor({ timeout: 15_000 });
    await page
      .locator('#status-updated', { hasText: /^Live · updated just now$/ })
      .waitFor({ timeout: 5000 });
    // Chromium logs the refused reconnects while the server was down; nothing else may appear.
    expect(problems.list.filter((problem) => !problem.includes('net::ERR_CONNECTION_REFUSED'))).to.deep.equal(
      [],
    );
  });

  it('can be framed by a configured origin only', async function () {
    // Another site: a page on another port (another origin) that frames the embeddable page.
    const host = http.createServer((_request, response) => {
      response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      response.end(`<!doctype html><title>host</title><iframe src="${app.url}/status/shop/embed"></iframe>`);
    });
    await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
    try {
      const hostUrl = `http://127.0.0.1:${(host.address() as AddressInfo).port}`;
      const boards = new BoardStore(env.client, redisNames(env.prefix));
      const names = redisNames(env.prefix);
      await boards.setPublic('shop', { services: ['api'], embedOrigins: [hostUrl] });
      await publishControl(env.client, names, { type: 'public-changed', board: 'shop' });
      await sleep(200);
      context = await browser.newContext();
      const page = await watchedPage(context, problems);
      await page.goto(hostUrl);
      const frame = page.frameLocator('iframe');
      await frame
        .locator('.status-updated', { hasText: /^Live · updated just now$/ })
        .waitFor({ timeout: 5000 });
      expect(await frame.locator('.status-name').allTextContents()).to.deep.equal(['api']);
      expect(problems.list).to.deep.equal([]);

      await boards.setPublic('shop', { services: ['api'], embedOrigins: [] });
      await publishControl(env.client, names, { type: 'public-changed', board: 'shop' });
      await sleep(200);
      const refused = await watchedPage(context, pageProblems());
      await refused.goto(hostUrl);
      await sleep(500);
      const embedded = refused.frames().find((each) => each !== refused.mainFrame());
      expect(embedded, 'the iframe').not.to.equal(undefined);
      expect(await embedded?.locator('.status-title').count()).to.equal(0);
    } finally {
      host.closeAllConnections();
      await new Promise((resolve) => host.close(resolve));
    }
  });
});
