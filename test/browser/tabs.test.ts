import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Pulseboard } from '../../server/pulseboard.ts';
import { until } from '../helpers/sse-client.ts';
import { closeContext, pageProblems, watchedPage, type PageProblems } from './helpers/chromium.ts';
import { logInThroughForm, tile, waitForLive } from './helpers/dashboard-page.ts';
import { startEnvironmentAndBrowser, type BrowserEnvironment } from './helpers/environment.ts';

describe('many tabs of one browser', function () {
  this.timeout(90_000);
  let env: BrowserEnvironment;
  let app: Pulseboard;
  let browser: Browser;
  let context: BrowserContext;
  let problems: PageProblems;

  before(async function () {
    ({ env, browser } = await startEnvironmentAndBrowser());
    app = await env.startApp();
    await env.publisher.publish({ type: 'status', service: 'api', state: 'ok' });
  });
  after(async function () {
    await browser?.close();
    await env?.close();
  });
  beforeEach(async function () {
    problems = pageProblems();
    context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  });
  afterEach(async function () {
    await closeContext(context);
  });

  async function openTabs(count: number): Promise<Page[]> {
    const first = await watchedPage(context, problems);
    await logInThroughForm(first, app.url, env.username, env.password);
    const pages = [first];
    for (let index = 1; index < count; index += 1) {
      const page = await watchedPage(context, problems);
      await page.goto(`${app.url}/b/main`);
      await waitForLive(page);
      pages.push(page);
    }
    return pages;
  }

  it('seven tabs all stay live on one shared stream', async function () {
    const pages = await openTabs(7);
    for (const page of pages) {
      expect(await page.evaluate(() => document.documentElement.dataset.stream)).to.equal('shared-worker');
    }
    // One stream for the whole browser, so the seventh tab never waits for a free connection.
    await until(() => app.hub.size === 1, 5000, 'a single stream');

    await env.publishRaw({ type: 'status', service: 'api', state: 'maintenance', message: 'tab test' });
    await Promise.all(
      pages.map((page) =>
        tile(page, 'api')
          .locator('.badge-label', { hasText: /^Maintenance$/ })
          .waitFor({ timeout: 2000 }),
      ),
    );
    expect(app.hub.size).to.equal(1);
    expect(problems.list).to.deep.equal([]);
  });

  it('keeps working without SharedWorker, with one stream per tab', async function () {
    await context.addInitScript(() => {
      Reflect.deleteProperty(globalThis, 'SharedWorker');
    });
    const pages = await openTabs(2);
    for (const page of pages) {
      expect(await page.evaluate(() => document.documentElement.dataset.stream)).to.equal('tab');
    }
    await until(() => app.hub.size === 2, 5000, 'one stream per tab');
    await env.publishRaw({ type: 'status', service: 'api', state: 'degraded', message: 'fallback test' });
    await Promise.all(
      pages.map((page) =>
        tile(page, 'api')
          .locator('.badge-label', { hasText: /^Degraded$/ })
          .waitFor({ timeout: 2000 }),
      ),
    );
    expect(problems.list).to.deep.equal([]);
  });

  it('logging out in one tab sends every tab to the login page', async function () {
    const pages = await openTabs(3);
    await pages[0]!.getByRole('button', { name: 'Log out' }).click();
    await Promise.all(pages.map((page) => page.waitForURL(/\/login\?reason=logged-out/, { timeout: 5000 })));
    await until(() => app.hub.size === 0, 3000, 'the stream to close');
    expect(problems.list).to.deep.equal([]);
  });
});
