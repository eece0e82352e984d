import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Pulseboard } from '../../server/pulseboard.ts';
import { chromium } from 'playwright-core';
import { sleep, until } from '../helpers/sse-client.ts';
import {
  CHROMIUM_ARGS,
  CHROMIUM_PATH,
  closeContext,
  pageProblems,
  watchedPage,
  type PageProblems,
} from './helpers/chromium.ts';
import { eventTitles, logInThroughForm, tile, waitForLive } from './helpers/dashboard-page.ts';
import {
  startEnvironment,
  startEnvironmentAndBrowser,
  type BrowserEnvironment,
} from './helpers/environment.ts';

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

/** How long the hidden tab stays hidden; `HIDDEN_TAB_SECONDS=60` runs the full minute. */
const HIDDEN_SECONDS = Number(process.env.HIDDEN_TAB_SECONDS ?? 8);

/**
 * Hides or shows the page as far as its scripts can tell. Headless Chromium reports every page visible
 * whatever is in front of it: another tab brought to the front (Target.createTarget in the same window,
 * Target.activateTarget), a minimized window (Browser.setWindowBounds), focus emulation off, the
 * renderer-backgrounding switches removed, Page.setWebLifecycleState 'frozen' — none of these turned
 * `document.hidden` true (Chromium 156). So the document's own `hidden`/`visibilityState` are overridden
 * and `visibilitychange` dispatched, as the browser does. Animation frames keep running meanwhile, which
 * makes the check stricter than a real background tab (where they stop): the page itself must hold back.
 */
async function setHidden(page: Page, hidden: boolean): Promise<void> {
  // A string, not a function: the test's transpiler would wrap named functions in a helper the page lacks.
  await page.evaluate(`(() => {
    const hidden = ${hidden};
    Object.defineProperty(document, 'hidden', { configurable: true, get() { return hidden; } });
    Object.defineProperty(document, 'visibilityState', {
      configurable: true,
      get() { return hidden ? 'hidden' : 'visible'; },
    });
    document.dispatchEvent(new Event('visibilitychange'));
  })()`);
}

describe('background tabs, the back/forward cache and the stale banner', function () {
  this.timeout(60_000 + HIDDEN_SECONDS * 2000);
  let env: BrowserEnvironment;
  let app: Pulseboard;
  let browser: Browser;
  let context: BrowserContext;
  let problems: PageProblems;

  before(async function () {
    ({ env, browser } = await startEnvironmentAndBrowser(
      {},
      {
        environment: startEnvironment,
        // Playwright turns the back/forward cache off by default; this suite needs it.
        browser: () =>
          chromium.launch({
            executablePath: CHROMIUM_PATH,
            headless: true,
            args: CHROMIUM_ARGS,
            ignoreDefaultArgs: ['--disable-back-forward-cache'],
          }),
      },
    ));
    // A heartbeat a second, so the stale banner shows within seconds (2.5 periods).
    app = await env.startApp({ env: { HEARTBEAT_MS: '1000' } });
    await env.publisher.publish({ type: 'status', service: 'api', state: 'ok' });
  });
  after(async function () {
    await browser?.close();
    await env?.close();
  });
  beforeEach(async function () {
    problems = pageProblems();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  });
  afterEach(async function () {
    await closeContext(context);
  });

  async function openBoard(): Promise<Page> {
    const page = await watchedPage(context, problems);
    await logInThroughForm(page, app.url, env.username, env.password);
    return page;
  }

  it(`a tab hidden for ${HIDDEN_SECONDS} s with events flowing draws nothing, then shows the current state at once with no event missing`, async function () {
    const page = await openBoard();
    await setHidden(page, true);
    // Every change to the page's DOM while hidden is counted.
    await page.evaluate(() => {
      const counter = { mutations: 0 };
      Reflect.set(window, 'hiddenMutations', counter);
      new MutationObserver((records) => (counter.mutations += records.length)).observe(document.body, {
        subtree: true,
        childList: true,
        attributes: true,
        characterData: true,
      });
    });
    const services = ['api', 'db', 'queue', 'cache'];
    const states = ['ok', 'degraded', 'down', 'maintenance'] as const;
    const titles: string[] = [];
    const deadline = Date.now() + HIDDEN_SECONDS * 1000;
    let lastRound = -1;
    for (let round = 0; Date.now() < deadline; round += 1) {
      lastRound = round;
      // Four statuses, a point and (every other round) a log event: ~24 events/s.
      for (const [index, service] of services.entries()) {
        await env.publisher.publish({
          type: 'status',
          service,
          state: states[(round + index) % states.length]!,
          message: `round ${round}`,
        });
      }
      await env.publisher.publish({ type: 'metric', name: 'load', value: round });
      if (round % 2 === 0) {
        const title = `hidden event ${round}`;
        titles.push(title);
        await env.publisher.publish({ type: 'event', level: 'info', title });
      }
      await sleep(200);
    }
    // Let the last events reach the page (into its state, not its DOM).
    await sleep(1500);
    const hiddenMutations = await page.evaluate(
      () => (Reflect.get(window, 'hiddenMutations') as { mutations: number }).mutations,
    );
    expect(hiddenMutations, 'DOM changes while hidden').to.equal(0);

    // Shown: two animation frames later (the first draws), the page shows everything. (The override
    // stays on the document, saying visible.)
    await setHidden(page, false);
    const shown = await page.evaluate(async () => {
      await new Promise((resolve) => requestAnimationFrame(resolve));
      await new Promise((resolve) => requestAnimationFrame(resolve));
      return {
        titles: Array.from(document.querySelectorAll('#event-log .event-title')).map(
          (node) => node.textContent ?? '',
        ),
        messages: Object.fromEntries(
          Array.from(document.querySelectorAll('.tile')).map((tile) => [
            tile.querySelector('.tile-name')?.textContent ?? '',
            tile.querySelector('.tile-message')?.textContent ?? '',
          ]),
        ),
      };
    });
    // Each tile shows its service's newest status.
    for (const service of services) expect(shown.messages[service], service).to.equal(`round ${lastRound}`);
    // Every log event published while hidden, newest first, each once.
    const hiddenTitles = shown.titles.filter((title) => title.startsWith('hidden event '));
    expect(hiddenTitles).to.deep.equal([...titles].reverse());
    expect(problems.list).to.deep.equal([]);
  });

  it('a page restored from the back/forward cache resumes its stream from its last id, nothing missing', async function () {
    const page = await openBoard();
    await page.evaluate(() => {
      Reflect.set(window, 'restoredFromCache', false);
      addEventListener('pageshow', (event) => {
        if (event.persisted) Reflect.set(window, 'restoredFromCache', true);
      });
    });
    const cdp = await context.newCDPSession(page);
    const notRestored: string[] = [];
    cdp.on('Page.backForwardCacheNotUsed', (event) => {
      for (const reason of event.notRestoredExplanations) notRestored.push(reason.reason);
    });
    await cdp.send('Page.enable');
    await env.publisher.publish({ type: 'event', level: 'info', title: 'before leaving' });
    await page.locator('#event-log .event-title', { hasText: 'before leaving' }).waitFor({ timeout: 3000 });

    // Away on another page of the site; the stream goes on without this tab.
    await page.goto(`${app.url}/livez`);
    await until(() => app.hub.size === 0, 5000, 'the tab to leave the stream on pagehide');
    const titles = ['while away 1', 'while away 2', 'while away 3'];
    for (const title of titles) await env.publisher.publish({ type: 'event', level: 'warn', title });
    await env.publisher.publish({ type: 'status', service: 'api', state: 'down', message: 'while away' });

    await page.goBack({ waitUntil: 'commit' });
    await page
      .locator('.tile .tile-message', { hasText: 'while away' })
      .waitFor({ timeout: 5000 })
      .catch(() => undefined);
    const restored = await page.evaluate(() => Reflect.get(window, 'restoredFromCache') === true);
    expect(
      restored,
      `restored from the back/forward cache (not restored: ${notRestored.join(', ')})`,
    ).to.equal(true);
    expect(await tile(page, 'api').locator('.tile-message').textContent()).to.equal('while away');
    // Each event published while away, once, after the one before leaving.
    const shown = (await eventTitles(page)).filter(
      (title) => title.startsWith('while away') || title === 'before leaving',
    );
    expect(shown).to.deep.equal([...titles].reverse().concat('before leaving'));
    await waitForLive(page);
    // Chromium asks /livez's site for /favicon.ico (404): the only error allowed.
    expect(problems.except([404])).to.deep.equal([]);
  });

  it('says "updated N s ago", and shows a stale banner while Redis is away that clears when it returns', async function () {
    const page = await openBoard();
    const banner = page.locator('#stale-banner');
    await page.locator('#last-event', { hasText: /^updated \ds ago$/ }).waitFor({ timeout: 3000 });
    expect(await banner.isHidden()).to.equal(true);
    // Heartbeats (events, while the bus is live) keep it fresh with no event at all.
    await sleep(3500);
    expect(await banner.isHidden()).to.equal(true);
    expect(await page.locator('#last-event').textContent()).to.match(/^updated [01]s ago$/);

    // Redis goes away (and comes back with its data: the session lives there): SHUTDOWN saves an RDB
    // once a save point is set, and the restarted server loads it.
    await env.client.configSet('save', '3600 1');
    await env.redis.shutdown();
    try {
      // Open streams stay open and get heartbeat comments only: after 2.5 heartbeats, the banner.
      await banner.waitFor({ state: 'visible', timeout: 8000 });
      expect(
        await page
          .getByRole('alert')
          .filter({ hasText: /^Out of date/ })
          .count(),
      ).to.equal(1);
      expect(await page.locator('#last-event').textContent()).to.match(/^updated \ds ago$/);
    } finally {
      await env.redis.start();
    }
    await banner.waitFor({ state: 'hidden', timeout: 10_000 });
    await env.publisher.publish({ type: 'status', service: 'api', state: 'maintenance', message: 'back' });
    await tile(page, 'api').locator('.tile-message', { hasText: 'back' }).waitFor({ timeout: 5000 });
    expect(problems.except([503])).to.deep.equal([]);
  });
});
