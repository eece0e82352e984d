// Kiosk mode in Chromium (docs/dashboard.md, "Kiosk mode"): no controls, large type, the rotation through
// the chosen boards (and the overview when started there), a wake-lock request that never errors, and the
// picture for the README.
import { expect } from 'chai';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { BoardStore } from '../../server/auth/boards.ts';
import type { Pulseboard } from '../../server/pulseboard.ts';
import { redisNames } from '../../shared/keys.ts';
import { ensureTestUser } from '../helpers/auth.ts';
import { closeContext, pageProblems, watchedPage, type PageProblems } from './helpers/chromium.ts';
import { logInThroughForm, waitForLive } from './helpers/dashboard-page.ts';
import { startEnvironmentAndBrowser, type BrowserEnvironment } from './helpers/environment.ts';

const SCREENSHOTS = fileURLToPath(
  new URL(
    process.env.UPDATE_SCREENSHOTS ? '../../docs/screenshots/' : '../../test-results/screenshots/',
    import.meta.url,
  ),
);
/** The shortest stop kiosk mode allows. */
const CYCLE_SECONDS = 5;

describe('kiosk mode in Chromium', function () {
  this.timeout(90_000);
  let env: BrowserEnvironment;
  let app: Pulseboard;
  let browser: Browser;
  let context: BrowserContext;
  let problems: PageProblems;

  before(async function () {
    ({ env, browser } = await startEnvironmentAndBrowser());
    const boards = new BoardStore(env.client, redisNames(env.prefix));
    await boards.add('payments', 'Payments');
    await boards.add('edge', 'Edge');
    // An admin sees every board.
    await ensureTestUser(env.redis.url, env.prefix, 'wall', 'admin', []);
    app = await env.startApp();
    const statuses = [
      ['main', 'api', 'ok', 'all checks passing'],
      ['main', 'db', 'degraded', 'replica lag 4 s'],
      ['main', 'queue', 'ok', '12 jobs waiting'],
      ['main', 'search', 'down', 'connection refused'],
      ['payments', 'checkout', 'ok', 'p99 210 ms'],
      ['payments', 'ledger', 'maintenance', 'nightly compaction'],
      ['edge', 'cdn', 'ok', 'hit ratio 97%'],
    ] as const;
    for (const [board, service, state, message] of statuses) {
      await env.publisher.publish({ type: 'status', board, service, state, message, group: 'core' });
    }
    for (let index = 0; index < 30; index += 1) {
      await env.publisher.publish({
        type: 'metric',
        name: 'api.latency',
        unit: 'ms',
        value: 80 + (index % 7) * 9,
      });
    }
    await env.publisher.publish({
      type: 'event',
      level: 'warn',
      service: 'db',
      title: 'Replica lag above 3 s',
    });
  });
  after(async function () {
    await browser?.close();
    await env?.close();
  });
  beforeEach(async function () {
    problems = pageProblems();
    context = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
  });
  afterEach(async function () {
    await closeContext(context);
  });

  async function open(path: string): Promise<Page> {
    const page = await watchedPage(context, problems);
    await logInThroughForm(page, app.url, 'wall', env.password, path);
    return page;
  }

  const rootFontSize = (page: Page) =>
    page.evaluate(() => parseFloat(getComputedStyle(document.documentElement).fontSize));

  it('shows a board with no controls and large type, and rotates through the chosen boards', async function () {
    const page = await open(`/b/main?kiosk=1&boards=main,payments&cycle=${CYCLE_SECONDS}`);
    expect(await page.evaluate(() => document.documentElement.dataset.kiosk)).to.equal('rotating');
    for (const control of ['#filter', '#logout', '#board-switcher', '.skip-link']) {
      expect(await page.locator(control).isVisible(), control).to.equal(false);
    }
    expect(await page.getByRole('button').count(), 'buttons').to.equal(0);
    expect(await page.getByRole('searchbox').count(), 'search boxes').to.equal(0);
    // 1920 px wide: 1.15vw = 22 px, against 16 px without kiosk mode.
    expect(await rootFontSize(page)).to.be.above(20);
    await page.locator('.brand', { hasText: /^Main$/ }).waitFor({ timeout: 3000 });
    // The wake lock is asked for; headless Chromium may refuse it, never with an error on the page.
    expect(await page.evaluate(() => document.documentElement.dataset.wakeLock)).to.be.oneOf([
      'held',
      'refused',
      'unsupported',
    ]);

    await mkdir(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: `${SCREENSHOTS}kiosk.png` });

    const started = Date.now();
    await page.waitForURL(/\/b\/payments\?kiosk=1&boards=main,payments&cycle=5$/, { timeout: 10_000 });
    expect(Date.now() - started).to.be.below(CYCLE_SECONDS * 1000 + 2000);
    await waitForLive(page);
    await page.locator('.tile-name', { hasText: /^ledger$/ }).waitFor({ timeout: 3000 });
    expect(await page.locator('#filter').isVisible()).to.equal(false);
    // And back to the first: `edge`, not chosen, is never shown.
    await page.waitForURL(/\/b\/main\?kiosk=1/, { timeout: 10_000 });
    await waitForLive(page);
    expect(problems.list).to.deep.equal([]);
  });

  it('started on the overview, shows it, then every board the user may see, then the overview again', async function () {
    const page = await open(`/?kiosk=1&cycle=${CYCLE_SECONDS}`);
    expect(await page.locator('#logout').isVisible()).to.equal(false);
    expect(await page.locator('#board-switcher').isVisible()).to.equal(false);
    await page.locator('.board-card').first().waitFor({ timeout: 3000 });
    const visited: string[] = [];
    for (const board of ['main', 'edge', 'payments']) {
      await page.waitForURL(new RegExp(`/b/${board}\\?kiosk=1&cycle=5&overview=1$`), { timeout: 10_000 });
      visited.push(board);
    }
    await page.waitForURL(/\/\?kiosk=1&cycle=5&overview=1$/, { timeout: 10_000 });
    expect(visited).to.deep.equal(['main', 'edge', 'payments']);
    expect(problems.list).to.deep.equal([]);
  });
});
