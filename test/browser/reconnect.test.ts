import { expect } from 'chai';
import type { Browser, BrowserContext } from 'playwright-core';
import { closeContext, pageProblems, watchedPage } from './helpers/chromium.ts';
import { connectionLabel, eventTitles, logInThroughForm, waitForLive } from './helpers/dashboard-page.ts';
import { startEnvironmentAndBrowser, type BrowserEnvironment } from './helpers/environment.ts';

describe('the dashboard across a server restart', function () {
  this.timeout(90_000);
  let env: BrowserEnvironment;
  let browser: Browser;
  let context: BrowserContext;

  before(async function () {
    ({ env, browser } = await startEnvironmentAndBrowser());
  });
  after(async function () {
    await closeContext(context);
    await browser?.close();
    await env?.close();
  });

  it('shows reconnecting while the server is down and resumes with no event missing', async function () {
    const first = await env.startApp();
    const { port } = first;
    const problems = pageProblems();
    context = await browser.newContext();
    const page = await watchedPage(context, problems);
    await logInThroughForm(page, first.url, env.username, env.password);
    await env.publisher.publish({ type: 'event', level: 'info', title: 'before 1' });
    await page.locator('.event-title', { hasText: 'before 1' }).waitFor({ timeout: 2000 });

    await first.stop();
    await connectionLabel(page)
      .filter({ hasText: /^Reconnecting…$/ })
      .waitFor({ timeout: 5000 });
    // Published while no server runs: sequenced in Redis, waiting in the log.
    const missed = Array.from({ length: 20 }, (_, index) => `while down ${index + 1}`);
    for (const title of missed) await env.publisher.publish({ type: 'event', level: 'warn', title });
    await env.publisher.publish({ type: 'status', service: 'api', state: 'down', message: 'while down' });

    const second = await env.startApp({ port });
    expect(second.port).to.equal(port);
    await waitForLive(page, 15_000);
    await page.locator('.event-title', { hasText: /^while down 20$/ }).waitFor({ timeout: 5000 });
    await env.publisher.publish({ type: 'event', level: 'info', title: 'after 1' });
    await page.locator('.event-title', { hasText: /^after 1$/ }).waitFor({ timeout: 2000 });

    // Newest first: every event exactly once, in order.
    expect(await eventTitles(page)).to.deep.equal(['after 1', ...[...missed].reverse(), 'before 1']);
    expect(await page.locator('.tile-name').allTextContents()).to.deep.equal(['api']);
    expect(problems.list).to.deep.equal([]);
  });
});
