import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Pulseboard } from '../../server/pulseboard.ts';
import { until } from '../helpers/sse-client.ts';
import { closeContext, pageProblems, watchedPage, type PageProblems } from './helpers/chromium.ts';
import { connectionLabel, eventTitles, logInThroughForm, tile } from './helpers/dashboard-page.ts';
import { startEnvironmentAndBrowser, type BrowserEnvironment } from './helpers/environment.ts';

describe('the dashboard in Chromium', function () {
  this.timeout(60_000);
  let env: BrowserEnvironment;
  let app: Pulseboard;
  let browser: Browser;
  let context: BrowserContext;
  let problems: PageProblems;
  let page: Page;

  before(async function () {
    ({ env, browser } = await startEnvironmentAndBrowser());
    app = await env.startApp();
    await env.publisher.publish({
      type: 'status',
      service: 'api',
      group: 'edge',
      state: 'ok',
      message: 'all checks passing',
    });
    await env.publisher.publish({ type: 'status', service: 'api-2', group: 'edge', state: 'ok' });
    await env.publisher.publish({
      type: 'status',
      service: 'db',
      group: 'data',
      state: 'down',
      message: 'no primary',
    });
    await env.publisher.publish({
      type: 'metrics',
      points: [10, 12, 11].map((value, index) => ({
        name: 'api.latency',
        value,
        unit: 'ms',
        ts: Date.now() - (3 - index) * 1000,
      })),
    });
    await env.publisher.publish({ type: 'event', level: 'warn', title: 'deploy started', service: 'api' });
  });
  after(async function () {
    await browser?.close();
    await env?.close();
  });
  beforeEach(async function () {
    problems = pageProblems();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await watchedPage(context, problems);
    await logInThroughForm(page, app.url, env.username, env.password);
  });
  afterEach(async function () {
    await closeContext(context);
  });

  it('shows the snapshot, a status published through Redis within one second, and a growing chart', async function () {
    expect(await tile(page, 'api').locator('.badge-label').textContent()).to.equal('OK');
    expect(await tile(page, 'api').locator('.tile-message').textContent()).to.equal('all checks passing');
    expect(await tile(page, 'db').locator('.badge-label').textContent()).to.equal('Down');
    expect(await tile(page, 'db').getAttribute('data-state')).to.equal('down');
    expect(await page.locator('.tile-group-title').allTextContents()).to.deep.equal([
      'data (1 down)',
      'edge (2 ok)',
    ]);
    expect(await eventTitles(page)).to.deep.equal(['deploy started']);
    const chart = page.locator('.chart-card[data-metric="api.latency"]');
    await page.locator('.chart-card[data-metric="api.latency"][data-points="3"]').waitFor();

    const started = Date.now();
    await env.publishRaw({ type: 'status', service: 'api', state: 'down', message: 'health check failing' });
    await tile(page, 'api')
      .locator('.badge-label', { hasText: /^Down$/ })
      .waitFor({ timeout: 1000 });
    expect(Date.now() - started).to.be.below(1000);
    expect(await tile(page, 'api').locator('.tile-message').textContent()).to.equal('health check failing');
    // The change is said in the live region, in words.
    await page.locator('#announcer', { hasText: 'api is down' }).waitFor({ timeout: 5000 });

    await env.publisher.publish({
      type: 'metrics',
      points: [20, 30, 40, 50, 1500].map((value) => ({ name: 'api.latency', value, unit: 'ms' })),
    });
    // The value text follows at once; the canvas redraws at most every 2 s (REDRAW_MIN_MS of 15 min in
    // client/view/metric-charts.ts, docs/dashboard.md "Performance"), so a chart drawn just before the
    // points came shows them up to 2 s (+ the 200-ms render spacing and a frame) later.
    await chart.locator('.chart-value', { hasText: /^1\.5 s$/ }).waitFor({ timeout: 2000 });
    await page.locator('.chart-card[data-metric="api.latency"][data-points="8"]').waitFor({ timeout: 5000 });
    expect(await chart.locator('.chart-range').textContent()).to.equal('min 10 ms · max 1.5 s');
    expect(problems.list).to.deep.equal([]);
  });

  it('shows a status message made of HTML as literal text and runs nothing', async function () {
    const requests: string[] = [];
    context.on('request', (request) => requests.push(new URL(request.url()).pathname));
    const message = '<img src=x onerror=alert(1)>';
    await env.publishRaw({ type: 'status', service: 'hostile', state: 'degraded', message });
    await env.publishRaw({
      type: 'event',
      level: 'error',
      title: '<script>alert(2)</script>',
      text: message,
    });
    await tile(page, 'hostile').waitFor({ timeout: 2000 });
    expect(await tile(page, 'hostile').locator('.tile-message').textContent()).to.equal(message);
    await page.locator('.event-title', { hasText: '<script>alert(2)</script>' }).waitFor({ timeout: 2000 });
    expect(await page.locator('.event-text', { hasText: message }).count()).to.equal(1);
    expect(await page.locator('main img, main script').count()).to.equal(0);
    await page.waitForTimeout(300);
    expect(requests).to.not.include('/x');
    expect(problems.list).to.deep.equal([]); // includes: no dialog was opened
  });

  it('filters with wildcards, keeps the filter in the URL, and narrows the stream to its topics', async function () {
    const filter = page.getByRole('searchbox', { name: 'Filter' });
    await filter.fill('api*');
    await page.waitForURL(/[?&]filter=api\*/);
    await until(
      () => app.hub.count((connection) => connection.topics.key === 'event:*,metric:api*,status:api*') === 1,
      5000,
      'the stream to be reopened with the filter topics',
    );
    expect(app.hub.size).to.equal(1);
    await tile(page, 'db').waitFor({ state: 'detached' });
    expect((await page.locator('.tile-name').allTextContents()).sort()).to.deep.equal(['api', 'api-2']);

    // Outside the filter: never shown. Inside: shown.
    await env.publishRaw({ type: 'status', service: 'db-replica', state: 'ok' });
    await env.publishRaw({ type: 'status', service: 'api-3', state: 'ok' });
    await tile(page, 'api-3').waitFor({ timeout: 2000 });
    expect(await tile(page, 'db-replica').count()).to.equal(0);

    // A reload keeps the filter.
    await page.reload();
    // The dashboard fills the box once its session check answers, after the load event.
    await page.waitForFunction(
      () => document.querySelector<HTMLInputElement>('#filter')?.value === 'api*',
      null,
      {
        timeout: 5000,
      },
    );
    expect(await filter.inputValue()).to.equal('api*');
    await tile(page, 'api-3').waitFor();
    expect(await tile(page, 'db').count()).to.equal(0);

    // A word the server would refuse is reported, and not applied.
    await filter.fill('api <b>');
    await page.locator('#filter-error', { hasText: '<b>' }).waitFor();
    expect(await filter.getAttribute('aria-invalid')).to.equal('true');
    expect(new URL(page.url()).searchParams.get('filter')).to.equal('api*');
    expect(problems.list).to.deep.equal([]);
  });

  it('can be used with the keyboard alone', async function () {
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).to.equal('Skip to services');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.id)).to.equal('services');
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Shift+Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).to.equal('filter');
    await page.keyboard.type('db');
    await page.keyboard.press('Enter');
    await page.waitForURL(/[?&]filter=db/);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).to.equal('logout');
  });

  it('logging out returns to the login page and closes the stream', async function () {
    await until(() => app.hub.size === 1, 5000, 'the stream to open');
    expect(await connectionLabel(page).textContent()).to.equal('Live');
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/\/login\?reason=logged-out/);
    expect(await page.locator('#login-notice').textContent()).to.equal('You have logged out.');
    await until(() => app.hub.size === 0, 3000, 'the stream to close');
    await page.goto(`${app.url}/`);
    await page.waitForURL(/\/login$/);
    expect(problems.list).to.deep.equal([]);
  });
});
