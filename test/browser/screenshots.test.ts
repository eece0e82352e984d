// Renders a board view with realistic data in light and dark, on a desktop and a phone, the board
// overview, the public status page and the login page, and saves the pictures the README shows (docs/screenshots/).
import { expect } from 'chai';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { BoardStore } from '../../server/auth/boards.ts';
import type { Pulseboard } from '../../server/pulseboard.ts';
import { redisNames } from '../../shared/keys.ts';
import { ensureTestUser } from '../helpers/auth.ts';
import type { StatusInput } from '../../shared/events.ts';
import { pageProblems, watchedPage } from './helpers/chromium.ts';
import { logInThroughForm } from './helpers/dashboard-page.ts';
import { startEnvironmentAndBrowser, type BrowserEnvironment } from './helpers/environment.ts';

// `npm run screenshots` refreshes the README's pictures; a plain test run keeps them out of the work tree.
const SCREENSHOTS = fileURLToPath(
  new URL(
    process.env.UPDATE_SCREENSHOTS ? '../../docs/screenshots/' : '../../test-results/screenshots/',
    import.meta.url,
  ),
);
const MINUTE = 60_000;

const SERVICES: (Omit<StatusInput, 'type'> & { agoMs: number })[] = [
  { service: 'api', group: 'edge', state: 'ok', message: 'all checks passing', agoMs: 42 * MINUTE },
  { service: 'web', group: 'edge', state: 'ok', message: 'all checks passing', agoMs: 3 * 60 * MINUTE },
  { service: 'auth', group: 'edge', state: 'ok', message: 'p99 120 ms', agoMs: 18 * MINUTE },
  {
    service: 'cdn',
    group: 'edge',
    state: 'maintenance',
    message: 'certificate rotation until 15:00',
    agoMs: 6 * MINUTE,
  },
  {
    service: 'postgres',
    group: 'data',
    state: 'degraded',
    message: 'replication lag 12 s on replica-2',
    agoMs: 4 * MINUTE,
  },
  { service: 'redis', group: 'data', state: 'ok', message: 'memory 41%', agoMs: 26 * 60 * MINUTE },
  { service: 'search', group: 'data', state: 'ok', message: 'all checks passing', agoMs: 55 * MINUTE },
  { service: 'billing', group: 'jobs', state: 'ok', message: 'last run 2 min ago', agoMs: 2 * MINUTE },
  {
    service: 'mailer',
    group: 'jobs',
    state: 'down',
    message: 'SMTP relay refused the connection',
    agoMs: 90_000,
  },
  {
    service: 'reports',
    group: 'jobs',
    state: 'ok',
    message: 'nightly export done',
    ttl: 300,
    agoMs: 14 * MINUTE,
  },
];

const EVENTS = [
  { level: 'info', title: 'Deploy api v2.14.0 started', service: 'api', agoMs: 12 * MINUTE },
  { level: 'info', title: 'Deploy api v2.14.0 finished', service: 'api', agoMs: 9 * MINUTE },
  {
    level: 'warn',
    title: 'Replication lag above 10 s',
    service: 'postgres',
    text: 'replica-2 is 12 s behind the primary',
    agoMs: 4 * MINUTE,
  },
  {
    level: 'error',
    title: 'SMTP relay refused the connection',
    service: 'mailer',
    text: '421 4.7.0 Try again later',
    agoMs: 90_000,
  },
  { level: 'info', title: 'Certificate rotation started', service: 'cdn', agoMs: 6 * MINUTE },
] as const;

/** Chart markers of the 24-hour view (older than 15 minutes: the other pictures show none). */
const ANNOTATIONS = [
  { level: 'info', title: 'Deploy api v2.13.0', service: 'api', agoMs: 20 * 60 * MINUTE },
  { level: 'error', title: 'Redis failover', agoMs: 13 * 60 * MINUTE },
  { level: 'info', title: 'Deploy api v2.13.1', service: 'api', agoMs: 7 * 60 * MINUTE },
  { level: 'info', title: 'Traffic shifted to eu-west', agoMs: 3 * 60 * MINUTE },
] as const;
/** Points of the day before the last 15 minutes, one every 2 minutes. */
const HISTORY_POINTS = 712;

/** Boards besides main, for the overview and the switcher: title and the states of their services. */
const OTHER_BOARDS: { name: string; title: string; services: Omit<StatusInput, 'type' | 'board'>[] }[] = [
  {
    name: 'payments',
    title: 'Payments',
    services: [
      { service: 'checkout', state: 'ok' },
      { service: 'ledger', state: 'ok' },
      { service: 'psp-gateway', state: 'degraded', message: 'p99 2.1 s at the card processor' },
      { service: 'refunds', state: 'ok' },
    ],
  },
  {
    name: 'edge',
    title: 'Edge network',
    services: [
      { service: 'cdn-eu', state: 'ok' },
      { service: 'cdn-us', state: 'ok' },
      { service: 'dns', state: 'ok' },
    ],
  },
  {
    name: 'data',
    title: 'Data platform',
    services: [
      { service: 'warehouse', state: 'maintenance', message: 'vacuum until 04:00' },
      { service: 'kafka', state: 'ok' },
    ],
  },
  { name: 'ml', title: 'ML serving', services: [] },
];
/** An admin sees every board (the switcher lists them all). */
const ADMIN = 'ops-lead';

/** A smooth-ish walk, so the charts look like real metrics. */
function walk(points: number, start: number, step: number, min: number): number[] {
  const values: number[] = [];
  let value = start;
  for (let index = 0; index < points; index += 1) {
    value = Math.max(min, value + Math.sin(index / 5) * step + (((index * 7919) % 13) - 6) * (step / 6));
    values.push(Math.round(value * 10) / 10);
  }
  return values;
}

async function seed(env: BrowserEnvironment): Promise<void> {
  const now = Date.now();
  const boards = new BoardStore(env.client, redisNames(env.prefix));
  for (const { name, title, services } of OTHER_BOARDS) {
    await boards.add(name, title);
    for (const status of services) await env.publisher.publish({ type: 'status', board: name, ...status });
  }
  await ensureTestUser(env.redis.url, env.prefix, ADMIN, 'admin', []);
  for (const { agoMs, ...status } of SERVICES) {
    await env.publisher.publish({ type: 'status', ...status, ts: now - agoMs });
  }
  const points = 90; // one every 10 s over the last 15 minutes
  const series: [string, string, number[]][] = [
    ['api.latency', 'ms', walk(points, 120, 14, 40)],
    ['api.rps', 'req/s', walk(points, 1250, 120, 300)],
    ['queue.depth', 'jobs', walk(points, 40, 9, 0)],
    ['cpu.web-1', '%', walk(points, 38, 5, 2)],
    ['memory.redis', 'B', walk(points, 1.6e9, 4e7, 1e9)],
    ['mailer.sent', 'mails', walk(points, 30, 6, 0)],
  ];
  for (const [name, unit, values] of series) {
    // The day before, every 2 minutes, for the 24-hour view (docs/screenshots/chart-24h-annotations.png).
    // The 15-minute walk played back and forth, with a daily swell: the day joins today's level.
    const day = Array.from({ length: HISTORY_POINTS }, (_, index) => {
      const cycle = index % (2 * values.length);
      const at = cycle < values.length ? cycle : 2 * values.length - 1 - cycle;
      const swell = 1 + 0.25 * Math.sin((index / HISTORY_POINTS) * 2 * Math.PI);
      return Math.round((values[at] ?? 0) * swell * 10) / 10;
    });
    await env.publisher.publish({
      type: 'metrics',
      points: day.map((value, index) => ({
        name,
        unit,
        value,
        ts: now - 15 * MINUTE - (HISTORY_POINTS - index) * 2 * MINUTE,
      })),
    });
    await env.publisher.publish({
      type: 'metrics',
      points: values.map((value, index) => ({ name, unit, value, ts: now - (points - 1 - index) * 10_000 })),
    });
  }
  for (const { agoMs, ...annotation } of ANNOTATIONS) {
    await env.publisher.publish({ type: 'event', ...annotation, annotate: true, ts: now - agoMs });
  }
  // In the order they happened, as a real log would have them.
  for (const { agoMs, ...event } of [...EVENTS].sort((a, b) => b.agoMs - a.agoMs)) {
    await env.publisher.publish({ type: 'event', ...event, ts: now - agoMs });
  }
}

describe('screenshots of a board, the board overview and the login page', function () {
  this.timeout(90_000);
  let env: BrowserEnvironment;
  let app: Pulseboard;
  let browser: Browser;

  before(async function () {
    ({ env, browser } = await startEnvironmentAndBrowser());
    // Seeded first: the worker reads the board registry at its start (boards added later show up on the
    // `boards-changed` control message the CLI sends, which this seed does not).
    await seed(env);
    app = await env.startApp();
    await mkdir(SCREENSHOTS, { recursive: true });
  });
  after(async function () {
    await browser?.close();
    await env?.close();
  });

  const shots = [
    { file: 'dashboard-light.png', colorScheme: 'light', viewport: { width: 1440, height: 1000 } },
    { file: 'dashboard-dark.png', colorScheme: 'dark', viewport: { width: 1440, height: 1000 } },
    { file: 'dashboard-phone.png', colorScheme: 'light', viewport: { width: 390, height: 2600 } },
  ] as const;

  for (const shot of shots) {
    it(`saves ${shot.file}`, async function () {
      const problems = pageProblems();
      const context = await browser.newContext({ colorScheme: shot.colorScheme, viewport: shot.viewport });
      try {
        const page = await watchedPage(context, problems);
        await logInThroughForm(page, app.url, ADMIN, env.password);
        await page.locator('.switcher-link', { hasText: 'ML serving' }).waitFor();
        await page
          .locator('.tile')
          .nth(SERVICES.length - 1)
          .waitFor();
        expect(await page.locator('.tile').count()).to.equal(SERVICES.length);
        // The report job's ttl (5 min) ran out 9 minutes ago.
        expect(await page.locator('.tile[data-state="stale"] .tile-name').allTextContents()).to.deep.equal([
          'reports',
        ]);
        // Every chart drawn before the picture is taken.
        await page.waitForFunction(
          (count) => document.querySelectorAll('.chart-card[data-points]').length === count,
          6,
          { timeout: 10_000 },
        );
        const file = path.join(SCREENSHOTS, shot.file);
        await page.screenshot({ path: file, fullPage: true });
        expect((await stat(file)).size).to.be.above(10_000);
        expect(problems.list).to.deep.equal([]);
      } finally {
        await context.close();
      }
    });
  }

  it('saves chart-24h-annotations.png', async function () {
    const problems = pageProblems();
    const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
    try {
      const page = await watchedPage(context, problems);
      await logInThroughForm(page, app.url, ADMIN, env.password, '/b/main?range=24h');
      // Every chart drawn with its history, the api charts with 4 markers, the others with 2.
      // (The lines are drawn on the canvas; the page's chart probe lists them.)
      const apiMarks = () =>
        page.evaluate(
          () =>
            (
              globalThis as unknown as {
                pulseboardCharts?: { probe(name: string): { markers: { x: number }[] } | undefined };
              }
            ).pulseboardCharts?.probe('api.latency')?.markers ?? [],
        );
      await page.waitForFunction(
        () =>
          (
            globalThis as unknown as {
              pulseboardCharts?: { probe(name: string): { markers: unknown[] } | undefined };
            }
          ).pulseboardCharts?.probe('api.latency')?.markers.length === 4,
        undefined,
        { timeout: 15_000 },
      );
      await page.waitForFunction(
        () =>
          Array.from(document.querySelectorAll<HTMLElement>('.chart-card')).every(
            (card) => Number(card.dataset.points) > 600,
          ),
        undefined,
        { timeout: 15_000 },
      );
      const metrics = page.locator('#metrics');
      await metrics.scrollIntoViewIfNeeded();
      // One marker's title shown, as on hover (the pointer near its line).
      const third = (await apiMarks())[2];
      expect(third).to.not.equal(undefined);
      await page
        .locator('[data-metric="api.latency"] .chart-area')
        .hover({ position: { x: (third?.x ?? 0) + 1, y: 40 } });
      await page.locator('[data-metric="api.latency"] .chart-marker-label').waitFor();
      const file = path.join(SCREENSHOTS, 'chart-24h-annotations.png');
      await metrics.screenshot({ path: file });
      expect((await stat(file)).size).to.be.above(10_000);
      expect(problems.list).to.deep.equal([]);
    } finally {
      await context.close();
    }
  });

  it('saves overview-light.png', async function () {
    const problems = pageProblems();
    const context = await browser.newContext({ viewport: { width: 1440, height: 560 } });
    try {
      const page = await watchedPage(context, problems);
      await logInThroughForm(page, app.url, ADMIN, env.password, '/');
      await page.locator('.board-card').nth(OTHER_BOARDS.length).waitFor();
      expect(await page.locator('.board-card[data-board="main"] .badge-label').textContent()).to.equal(
        'Down',
      );
      const file = path.join(SCREENSHOTS, 'overview-light.png');
      await page.screenshot({ path: file, fullPage: true });
      expect((await stat(file)).size).to.be.above(10_000);
      expect(problems.list).to.deep.equal([]);
    } finally {
      await context.close();
    }
  });

  it('saves status-page.png (the public status page of main)', async function () {
    await new BoardStore(env.client, redisNames(env.prefix)).setPublic('main', {
      services: ['api', 'web', 'auth', 'cdn', 'postgres', 'search'],
      embedOrigins: [],
    });
    const problems = pageProblems();
    const context = await browser.newContext({ viewport: { width: 900, height: 820 } });
    try {
      const page = await watchedPage(context, problems);
      await page.goto(`${app.url}/status/main`);
      await page
        .locator('#status-updated', { hasText: /^Live · updated just now$/ })
        .waitFor({ timeout: 5000 });
      expect(await page.locator('.status-service').count()).to.equal(6);
      const file = path.join(SCREENSHOTS, 'status-page.png');
      await page.screenshot({ path: file, fullPage: true });
      expect((await stat(file)).size).to.be.above(10_000);
      expect(problems.list).to.deep.equal([]);
    } finally {
      await context.close();
    }
  });

  it('saves login.png', async function () {
    const problems = pageProblems();
    const context = await browser.newContext({ viewport: { width: 900, height: 620 } });
    try {
      const page = await watchedPage(context, problems);
      await page.goto(`${app.url}/login?reason=expired`);
      await page.getByLabel('Username').fill(env.username);
      const file = path.join(SCREENSHOTS, 'login.png');
      await page.screenshot({ path: file });
      expect((await stat(file)).size).to.be.above(5_000);
      expect(problems.list).to.deep.equal([]);
    } finally {
      await context.close();
    }
  });
});
