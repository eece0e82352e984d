import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Pulseboard } from '../../server/pulseboard.ts';
import { sessionNames } from '../../shared/keys.ts';
import { closeContext, pageProblems, watchedPage, type PageProblems } from './helpers/chromium.ts';
import { logInThroughForm, waitForLive } from './helpers/dashboard-page.ts';
import { startEnvironmentAndBrowser, type BrowserEnvironment } from './helpers/environment.ts';

describe('the login page in Chromium', function () {
  this.timeout(60_000);
  let env: BrowserEnvironment;
  let app: Pulseboard;
  let browser: Browser;
  let context: BrowserContext;
  let problems: PageProblems;
  let page: Page;

  before(async function () {
    // Two failures per username + IP, and streams re-checked often, to keep the tests short.
    ({ env, browser } = await startEnvironmentAndBrowser({
      LOGIN_MAX_FAILURES_PER_USER_IP: '2',
      SESSION_CHECK_MS: '200',
    }));
    app = await env.startApp();
  });
  after(async function () {
    await browser?.close();
    await env?.close();
  });
  beforeEach(async function () {
    problems = pageProblems();
    context = await browser.newContext();
    page = await watchedPage(context, problems);
  });
  afterEach(async function () {
    await closeContext(context);
  });

  async function submit(username: string, password: string): Promise<void> {
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
  }

  it('sends a visitor without a session to the login page, and reports wrong credentials', async function () {
    await page.goto(`${app.url}/`);
    await page.waitForURL(`${app.url}/login`);
    await submit(env.username, 'wrong password');
    const error = page.getByRole('alert');
    await error.filter({ hasText: 'Wrong username or password.' }).waitFor();
    expect(page.url()).to.equal(`${app.url}/login`);
    expect(await page.getByLabel('Password').inputValue()).to.equal('');
    expect(problems.except([401])).to.deep.equal([]);
  });

  it('reports throttling with the wait, and keeps the button disabled meanwhile', async function () {
    await page.goto(`${app.url}/login`);
    for (let attempt = 1; attempt <= 2; attempt += 1) {
      await submit('someone', `guess ${attempt}`);
      await page.getByRole('alert').filter({ hasText: 'Wrong username or password.' }).waitFor();
      await page.getByRole('button', { name: 'Log in' }).and(page.locator(':enabled')).waitFor();
    }
    await submit('someone', 'guess 3');
    const alert = page
      .getByRole('alert')
      .filter({ hasText: /Too many login attempts\. Try again in \d+ s\./ });
    await alert.waitFor();
    const seconds = Number(/in (\d+) s/.exec((await alert.textContent()) ?? '')?.[1]);
    expect(seconds).to.be.within(800, 900); // the default 15-minute window
    const button = page.locator('#login-submit');
    expect(await button.isDisabled()).to.equal(true);
    expect(await button.textContent()).to.match(/^Try again in \d+ s$/);
    expect(problems.except([401, 429])).to.deep.equal([]);
  });

  it('returns to the page the user came from after logging in', async function () {
    await page.goto(`${app.url}/login?next=${encodeURIComponent('/b/main?filter=db*')}`);
    await submit(env.username, env.password);
    await page.waitForURL(`${app.url}/b/main?filter=db*`);
    await waitForLive(page);
    // A dashboard link from before boards (the filter at `/`) shows the main board with that filter.
    await page.goto(`${app.url}/?filter=api*`);
    await page.waitForURL(`${app.url}/b/main?filter=api*`);
    await waitForLive(page);
    // A `next` that leaves the site is ignored, also with a tab or newline inside `//` (the URL parser
    // drops them, so the browser would read `//evil.example`).
    for (const next of ['//example.com/', '/\t/example.com/', '/\n/example.com/', '/\\example.com/']) {
      await context.clearCookies();
      await page.goto(`${app.url}/login?next=${encodeURIComponent(next)}`);
      await submit(env.username, env.password);
      await page.waitForURL(`${app.url}/`);
      await waitForLive(page); // loaded, so clearing its cookie next cannot cut a request short
    }
    expect(problems.list).to.deep.equal([]);
  });

  it('an expired session sends the dashboard to the login page, which says so', async function () {
    await logInThroughForm(page, app.url, env.username, env.password);
    // Expiry is Redis forgetting the session: do just that.
    const keys = await env.client.keys(sessionNames(env.prefix).sessionPattern);
    expect(keys).to.have.length.above(0);
    await env.client.del(keys);
    await page.waitForURL(/\/login\?reason=expired/, { timeout: 10_000 });
    expect(await page.locator('#login-notice').textContent()).to.equal(
      'Your session has expired. Please log in again.',
    );
    await submit(env.username, env.password);
    await page.waitForURL(`${app.url}/b/main`);
    expect(problems.except([401])).to.deep.equal([]);
  });
});
