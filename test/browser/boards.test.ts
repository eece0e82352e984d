// Boards in the browser: a real worker and redis-server with two boards (payments, edge) besides main,
// alice granted payments, bob granted edge, an admin seeing all three (docs/dashboard.md, "Boards").
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { BoardStore } from '../../server/auth/boards.ts';
import { UserStore } from '../../server/auth/users.ts';
import { publishControl } from '../../server/bus/control.ts';
import type { Pulseboard } from '../../server/pulseboard.ts';
import { redisNames } from '../../shared/keys.ts';
import { ensureTestUser } from '../helpers/auth.ts';
import { until } from '../helpers/sse-client.ts';
import { closeContext, pageProblems, watchedPage, type PageProblems } from './helpers/chromium.ts';
import {
  connectionLabel,
  eventTitles,
  logInThroughForm,
  tile,
  waitForLive,
} from './helpers/dashboard-page.ts';
import { startEnvironmentAndBrowser, type BrowserEnvironment } from './helpers/environment.ts';

describe('boards in Chromium', function () {
  this.timeout(90_000);
  let env: BrowserEnvironment;
  let app: Pulseboard;
  let browser: Browser;
  let context: BrowserContext;
  let problems: PageProblems;

  before(async function () {
    ({ env, browser } = await startEnvironmentAndBrowser());
    const names = redisNames(env.prefix);
    const boards = new BoardStore(env.client, names);
    await boards.add('payments', 'Payments');
    await boards.add('edge', 'Edge');
    await ensureTestUser(env.redis.url, env.prefix, 'alice', 'viewer', ['payments']);
    await ensureTestUser(env.redis.url, env.prefix, 'bob', 'viewer', ['edge']);
    await ensureTestUser(env.redis.url, env.prefix, 'boss', 'admin', []);
    app = await env.startApp();
    await env.publisher.publish({ type: 'status', board: 'payments', service: 'checkout', state: 'ok' });
    await env.publisher.publish({ type: 'status', board: 'payments', service: 'ledger', state: 'ok' });
    await env.publisher.publish({ type: 'status', board: 'edge', service: 'cdn', state: 'degraded' });
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

  async function logIn(user: string, path: string, live = true): Promise<Page> {
    const page = await watchedPage(context, problems);
    await logInThroughForm(page, app.url, user, env.password, path, live);
    return page;
  }

  const cards = (page: Page) => page.locator('.board-card');
  const card = (page: Page, board: string) => page.locator(`.board-card[data-board="${board}"]`);
  const switcherLinks = (page: Page) => page.getByRole('navigation', { name: 'Boards' }).getByRole('link');

  it('the overview shows only the boards the user may see, each with its worst state, live', async function () {
    const page = await logIn('alice', '/');
    await card(page, 'payments').waitFor();
    expect(await cards(page).count()).to.equal(1);
    expect(await card(page, 'payments').locator('.badge-label').textContent()).to.equal('OK');
    expect(await card(page, 'payments').locator('.board-card-counts').textContent()).to.equal(
      '2 services: 2 ok',
    );
    expect(await switcherLinks(page).allTextContents()).to.deep.equal(['Overview', 'Payments']);
    expect(await switcherLinks(page).first().getAttribute('aria-current')).to.equal('page');

    await env.publishRaw({ type: 'status', board: 'payments', service: 'ledger', state: 'down' });
    await card(page, 'payments')
      .locator('.badge-label', { hasText: /^Down$/ })
      .waitFor({ timeout: 3000 });
    expect(await card(page, 'payments').getAttribute('data-state')).to.equal('down');
    expect(await card(page, 'payments').locator('.board-card-counts').textContent()).to.equal(
      '2 services: 1 down, 1 ok',
    );
    await page.locator('#announcer', { hasText: 'Payments is down' }).waitFor({ timeout: 5000 });
    // A status on a board alice may not see reaches neither her stream nor her page.
    await env.publishRaw({ type: 'status', board: 'edge', service: 'cdn', state: 'down' });
    await page.waitForTimeout(300);
    expect(await cards(page).count()).to.equal(1);

    await env.publishRaw({ type: 'status', board: 'payments', service: 'ledger', state: 'ok' });
    await card(page, 'payments').locator('.badge-label', { hasText: /^OK$/ }).waitFor({ timeout: 3000 });

    // Bob, in another browser, sees his board only.
    const other = await browser.newContext();
    try {
      const bob = await watchedPage(other, problems);
      await logInThroughForm(bob, app.url, 'bob', env.password, '/');
      await card(bob, 'edge').waitFor();
      expect(await cards(bob).evaluateAll((items) => items.map((item) => item.dataset.board))).to.deep.equal([
        'edge',
      ]);
      expect(await switcherLinks(bob).allTextContents()).to.deep.equal(['Overview', 'Edge']);
    } finally {
      await other.close();
    }
    expect(problems.list).to.deep.equal([]);
  });

  it('an admin overview lists every board, main first, each linking to its view', async function () {
    const page = await logIn('boss', '/');
    await card(page, 'edge').waitFor();
    expect(await cards(page).evaluateAll((items) => items.map((item) => item.dataset.board))).to.deep.equal([
      'main',
      'edge',
      'payments',
    ]);
    expect(await card(page, 'main').locator('.board-card-title').textContent()).to.equal('Main');
    await card(page, 'edge').getByRole('link', { name: 'Edge' }).click();
    await page.waitForURL(`${app.url}/b/edge`);
    await tile(page, 'cdn').waitFor();
    expect(problems.list).to.deep.equal([]);
  });

  it('a board view works from a deep link, after a reload, and live', async function () {
    const page = await logIn('alice', '/b/payments');
    await tile(page, 'checkout').waitFor();
    expect((await page.locator('.tile-name').allTextContents()).sort()).to.deep.equal(['checkout', 'ledger']);
    await page.reload();
    await waitForLive(page);
    await tile(page, 'checkout').waitFor();
    expect(await page.title()).to.equal('Payments · pulseboard');
    const current = page.getByRole('navigation', { name: 'Boards' }).locator('[aria-current="page"]');
    expect(await current.textContent()).to.equal('Payments');

    await env.publishRaw({ type: 'status', board: 'payments', service: 'checkout', state: 'maintenance' });
    await env.publishRaw({ type: 'status', service: 'checkout', state: 'down' }); // main's, not shown here
    await tile(page, 'checkout')
      .locator('.badge-label', { hasText: /^Maintenance$/ })
      .waitFor({ timeout: 2000 });
    await page.waitForTimeout(300);
    expect(await tile(page, 'checkout').locator('.badge-label').textContent()).to.equal('Maintenance');
    expect(problems.list).to.deep.equal([]);
  });

  it('the board switcher works with the keyboard and marks the current board', async function () {
    const page = await logIn('boss', '/b/main');
    await page.locator('.switcher-link', { hasText: 'Payments' }).waitFor();
    await page.keyboard.press('Tab'); // the skip link
    const focused = () => page.evaluate(() => document.activeElement?.textContent ?? '');
    const order: string[] = [];
    for (let step = 0; step < 4; step += 1) {
      await page.keyboard.press('Tab');
      order.push(await focused());
    }
    expect(order).to.deep.equal(['Overview', 'Main', 'Edge', 'Payments']);
    await page.keyboard.press('Shift+Tab');
    expect(await focused()).to.equal('Edge');
    await page.keyboard.press('Enter');
    await page.waitForURL(`${app.url}/b/edge`);
    await tile(page, 'cdn').waitFor();
    const current = page.getByRole('navigation', { name: 'Boards' }).locator('[aria-current="page"]');
    expect(await current.allTextContents()).to.deep.equal(['Edge']);
    expect(problems.list).to.deep.equal([]);
  });

  it('two tabs on two boards share one stream carrying both boards, and both update', async function () {
    const payments = await logIn('boss', '/b/payments');
    const edge = await watchedPage(context, problems);
    await edge.goto(`${app.url}/b/edge`);
    await waitForLive(edge);
    await until(
      () => app.hub.count((connection) => connection.boards.join(',') === 'edge,payments') === 1,
      5000,
      'one stream for both boards',
    );
    expect(app.hub.size).to.equal(1);

    await env.publishRaw({ type: 'status', board: 'payments', service: 'checkout', state: 'degraded' });
    await env.publishRaw({ type: 'status', board: 'edge', service: 'cdn', state: 'ok', message: 'healed' });
    await tile(payments, 'checkout')
      .locator('.badge-label', { hasText: /^Degraded$/ })
      .waitFor({ timeout: 2000 });
    await tile(edge, 'cdn').locator('.tile-message', { hasText: 'healed' }).waitFor({ timeout: 2000 });
    // Each tab shows its own board only.
    expect(await tile(payments, 'cdn').count()).to.equal(0);
    expect(await tile(edge, 'checkout').count()).to.equal(0);

    // The stream narrows when a tab goes away.
    await edge.close();
    await until(
      () => app.hub.count((connection) => connection.boards.join(',') === 'payments') === 1,
      5000,
      'the stream to carry payments only',
    );
    expect(app.hub.size).to.equal(1);
    expect(problems.list).to.deep.equal([]);
  });

  it('two tabs on two boards resume every board exactly across a server restart', async function () {
    const second = await env.startApp();
    const payments = await watchedPage(context, problems);
    await logInThroughForm(payments, second.url, 'boss', env.password, '/b/payments');
    const edge = await watchedPage(context, problems);
    await edge.goto(`${second.url}/b/edge`);
    await waitForLive(edge);
    await until(() => second.hub.size === 1, 5000, 'one stream for both tabs');

    await second.stop();
    await connectionLabel(payments)
      .filter({ hasText: /^Reconnecting…$/ })
      .waitFor({ timeout: 5000 });
    // Published while no server runs: sequenced in Redis, each board's log holding its own.
    const titles = (board: string) => Array.from({ length: 10 }, (_, index) => `${board} ${index + 1}`);
    for (let index = 0; index < 10; index += 1) {
      for (const board of ['payments', 'edge']) {
        await env.publisher.publish({ type: 'event', board, level: 'info', title: titles(board)[index]! });
      }
    }
    const restarted = await env.startApp({ port: second.port });
    await waitForLive(payments, 15_000);
    await env.publisher.publish({ type: 'event', board: 'payments', level: 'info', title: 'payments after' });
    await env.publisher.publish({ type: 'event', board: 'edge', level: 'info', title: 'edge after' });
    for (const [page, board] of [
      [payments, 'payments'],
      [edge, 'edge'],
    ] as const) {
      await page.locator('.event-title', { hasText: `${board} after` }).waitFor({ timeout: 5000 });
      // Newest first: every event of the board exactly once, in order, and none of the other board.
      expect(await eventTitles(page)).to.deep.equal([`${board} after`, ...titles(board).reverse()]);
    }
    expect(restarted.hub.size).to.equal(1);
    await restarted.stop();
    expect(problems.list).to.deep.equal([]);
  });

  it('a board the user may not see shows a clear page, and opens no stream for it', async function () {
    const page = await logIn('alice', '/b/edge', false);
    const heading = page.getByRole('heading', { name: 'You do not have access to this board' });
    await heading.waitFor({ timeout: 5000 });
    expect(await page.locator('#board').isHidden()).to.equal(true);
    expect(await page.locator('.tile').count()).to.equal(0);
    expect(await page.evaluate(() => document.activeElement?.id)).to.equal('board-unavailable-title');
    await page.getByRole('link', { name: 'Go to the overview of your boards' }).waitFor();
    expect(await switcherLinks(page).allTextContents()).to.deep.equal(['Overview', 'Payments']);
    expect(app.hub.count((connection) => connection.boards.includes('edge'))).to.equal(0);
    expect(problems.except([403])).to.deep.equal([]);
  });

  it('a user granted no board gets an overview that says so', async function () {
    await ensureTestUser(env.redis.url, env.prefix, 'carol', 'viewer', []);
    const page = await logIn('carol', '/', false);
    await page.locator('#boards-empty', { hasText: 'You cannot see any board yet' }).waitFor();
    expect(await cards(page).count()).to.equal(0);
    expect(await switcherLinks(page).allTextContents()).to.deep.equal(['Overview']);
    expect(await page.locator('#connection').isHidden()).to.equal(true);
    expect(problems.list).to.deep.equal([]);
  });

  it('a board that does not exist shows a page saying so to an admin', async function () {
    const page = await logIn('boss', '/b/no-such-board', false);
    await page.getByRole('heading', { name: 'There is no such board' }).waitFor({ timeout: 5000 });
    expect(await page.locator('#board').isHidden()).to.equal(true);
    expect(await page.title()).to.equal('There is no such board · pulseboard');
    expect(problems.except([404])).to.deep.equal([]);
  });

  it("revoking alice's grant while her board view is open says so, and no further event reaches it", async function () {
    const page = await logIn('alice', '/b/payments');
    await tile(page, 'checkout').waitFor();
    const overview = await watchedPage(context, problems);
    await overview.goto(`${app.url}/`);
    await card(overview, 'payments').waitFor();

    const names = redisNames(env.prefix);
    await new UserStore(env.client, names).updateBoards('alice', (boards) =>
      boards.filter((board) => board !== 'payments'),
    );
    await publishControl(env.client, names, { type: 'access-changed', userName: 'alice' });
    await page
      .getByRole('heading', { name: 'This board is no longer available to you' })
      .waitFor({ timeout: 3000 });
    expect(await page.locator('#board').isHidden()).to.equal(true);
    await card(overview, 'payments').waitFor({ state: 'detached', timeout: 3000 });
    await overview.locator('#boards-empty').waitFor();
    await until(
      () => app.hub.count((connection) => connection.boards.includes('payments')) === 0,
      3000,
      'no stream carrying payments',
    );
    // Nothing published on payments from now on reaches the page (its last state stays, hidden).
    const before = await tile(page, 'checkout').locator('.badge-label').textContent();
    await env.publishRaw({ type: 'status', board: 'payments', service: 'checkout', state: 'down' });
    await env.publishRaw({ type: 'status', board: 'payments', service: 'late-arrival', state: 'ok' });
    await page.waitForTimeout(500);
    expect(before).to.not.equal('Down');
    expect(await tile(page, 'checkout').locator('.badge-label').textContent()).to.equal(before);
    expect(await tile(page, 'late-arrival').count()).to.equal(0);
    // The board view still hears of a logout in another tab.
    await overview.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/\/login\?reason=logged-out/, { timeout: 5000 });
    await ensureGrant('alice', 'payments');
    expect(problems.except([403])).to.deep.equal([]);
  });

  async function ensureGrant(user: string, board: string): Promise<void> {
    const names = redisNames(env.prefix);
    await new UserStore(env.client, names).updateBoards(user, (boards) =>
      boards.includes(board) ? boards : [...boards, board],
    );
    await publishControl(env.client, names, { type: 'access-changed', userName: user });
  }
});
