// Long history and annotations in Chromium (docs/dashboard.md, "Ranges and history", "Annotations"): a
// week of points seeded through the publisher with explicit `ts`, the range selector, reloads while points
// keep coming, and annotation markers. Assertions read the arrays each chart gives uPlot (the page's
// `pulseboardCharts.probe`, client/view/metric-charts.ts).
import { expect } from 'chai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Pulseboard } from '../../server/pulseboard.ts';
import { HISTORY_TEN_MINUTES } from '../../shared/history-script.ts';
import type { ChartProbe } from '../../client/view/metric-charts.ts';
import { closeContext, pageProblems, watchedPage, type PageProblems } from './helpers/chromium.ts';
import { logInThroughForm, waitForLive } from './helpers/dashboard-page.ts';
import { startEnvironmentAndBrowser, type BrowserEnvironment } from './helpers/environment.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

async function probe(page: Page, metric: string): Promise<ChartProbe | undefined> {
  const value: unknown = await page.evaluate(
    (name) =>
      (
        globalThis as unknown as { pulseboardCharts?: { probe(name: string): unknown } }
      ).pulseboardCharts?.probe(name),
    metric,
  );
  return value as ChartProbe | undefined;
}

/** Polls the chart until `check` holds; returns the probe that passed. */
async function waitForChart(
  page: Page,
  metric: string,
  check: (chart: ChartProbe) => boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<ChartProbe> {
  const deadline = Date.now() + timeoutMs;
  let last: ChartProbe | undefined;
  for (;;) {
    last = await probe(page, metric);
    if (last && check(last)) return last;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; chart: ${JSON.stringify(last)?.slice(0, 400)}`);
    }
    await page.waitForTimeout(100);
  }
}

const total = (values: readonly number[] | undefined) => (values ?? []).reduce((a, b) => a + b, 0);

function strictlyIncreasing(xs: readonly number[]): boolean {
  return xs.every((x, index) => index === 0 || x > (xs[index - 1] ?? -Infinity));
}

describe('long history and annotations in Chromium', function () {
  this.timeout(120_000);
  let env: BrowserEnvironment;
  let app: Pulseboard;
  let browser: Browser;
  let context: BrowserContext;
  let problems: PageProblems;
  let page: Page;

  before(async function () {
    ({ env, browser } = await startEnvironmentAndBrowser());
    app = await env.startApp();
  });
  after(async function () {
    await browser?.close();
    await env?.close();
  });
  beforeEach(async function () {
    problems = pageProblems();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await watchedPage(context, problems);
  });
  afterEach(async function () {
    await closeContext(context);
    expect(problems.list).to.deep.equal([]);
  });

  it('shows a series with 7 days of points in the 7 d view, bounded to its 10-minute buckets', async function () {
    const now = Date.now();
    const points = Array.from({ length: 7 * 24 * 12 }, (_, index) => ({
      name: 'week.load',
      value: index % 100,
      ts: now - 7 * DAY + (index + 1) * 5 * MINUTE,
    }));
    for (let offset = 0; offset < points.length; offset += 1000) {
      await env.publisher.publish({ type: 'metrics', points: points.slice(offset, offset + 1000) });
    }
    await logInThroughForm(page, app.url, env.username, env.password, '/b/main?range=7d');
    expect(await page.locator('#chart-range').inputValue()).to.equal('7d');
    const chart = await waitForChart(
      page,
      'week.load',
      (c) => c.range === '7d' && c.xs.length > 0,
      '7 d chart',
    );
    // One bucket per 10 minutes: at most 1008 for the week (and one more for the bucket now begins).
    expect(chart.xs.length).to.be.within(1000, HISTORY_TEN_MINUTES.slots + 1);
    expect(strictlyIncreasing(chart.xs)).to.equal(true);
    expect((chart.xs.at(-1) ?? 0) - (chart.xs[0] ?? 0)).to.be.above((7 * DAY - 30 * MINUTE) / 1000);
    // Every point of the week is in some bucket, once.
    expect(total(chart.counts)).to.be.within(points.length - 2, points.length);
    expect(await page.locator('[data-metric="week.load"]').getAttribute('data-points')).to.equal(
      String(chart.xs.length),
    );
  });

  it('joins history and live without a gap or a doubled point across range switches and reloads', async function () {
    const now = Date.now();
    // Two hours of history at a point every 30 s (integer values: sums compare exactly).
    const seeded = Array.from({ length: 240 }, (_, index) => ({
      name: 'seam.rate',
      value: index % 7,
      ts: now - 2 * HOUR + index * 30_000,
    }));
    await env.publisher.publish({ type: 'metrics', points: seeded });
    let published = seeded.length;
    let publishedSum = seeded.reduce((sum, point) => sum + point.value, 0);
    let publishing = true;
    let paused: Promise<void> | undefined;
    let resume = () => {};
    // Live points all through each range switch and reload: some land before its history read, some
    // after, some during. They pause while a check waits for the chart to hold all of them.
    const live = (async () => {
      while (publishing) {
        if (paused) await paused;
        const value = published % 5;
        await env.publisher.publish({ type: 'metric', name: 'seam.rate', value });
        published += 1;
        publishedSum += value;
        await new Promise((resolve) => setTimeout(resolve, 40));
      }
    })();
    /** Pauses the live points (after the one in flight) until the returned function is called. */
    const pause = async () => {
      paused = new Promise((resolve) => {
        resume = () => {
          paused = undefined;
          resolve();
        };
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
    };

    /** The chart holds every point published so far, each once (24 h and 6 h cover them all). */
    const exact = async (range: string) => {
      await pause();
      let doubled: ChartProbe | undefined;
      const settled = await waitForChart(
        page,
        'seam.rate',
        (chart) => {
          if (chart.range !== range || chart.counts === undefined) return false;
          if (total(chart.counts) > published || !strictlyIncreasing(chart.xs)) doubled ??= chart;
          return total(chart.counts) === published;
        },
        `${range}: all ${published} points`,
        30_000,
      );
      expect(doubled, 'a point counted twice or a repeated x').to.equal(undefined);
      resume();
      return settled;
    };

    try {
      await logInThroughForm(page, app.url, env.username, env.password, '/b/main?range=24h');
      await exact('24h');
      await page.locator('#chart-range').selectOption('1h');
      await waitForChart(page, 'seam.rate', (c) => c.range === '1h' && c.counts !== undefined, '1 h chart');
      await page.locator('#chart-range').selectOption('6h');
      await exact('6h');
      await page.reload();
      await waitForLive(page);
      expect(new URL(page.url()).searchParams.get('range')).to.equal('6h');
      await exact('6h');
      await page.locator('#chart-range').selectOption('15m');
      await waitForChart(
        page,
        'seam.rate',
        (c) => c.range === '15m' && c.counts === undefined,
        '15 min chart',
      );
      await page.locator('#chart-range').selectOption('24h');
      await exact('24h');
    } finally {
      publishing = false;
      resume();
      await live;
    }
    // Nothing more comes: the chart ends with exactly what was published, values included.
    const chart = await exact('24h');
    const drawnSum = chart.ys.reduce((sum, avg, index) => sum + avg * (chart.counts?.[index] ?? 0), 0);
    expect(drawnSum).to.be.closeTo(publishedSum, 1e-6);
    // And a fresh page agrees with it.
    await page.reload();
    await waitForLive(page);
    const reloaded = await exact('24h');
    expect(reloaded.xs).to.deep.equal(chart.xs);
    expect(reloaded.counts).to.deep.equal(chart.counts);
  });

  it('draws annotation markers on the charts of their board and service, at their time, with their title on hover and focus', async function () {
    const now = Date.now();
    for (const name of ['api.latency', 'db.connections']) {
      await env.publisher.publish({
        type: 'metrics',
        points: Array.from({ length: 60 }, (_, index) => ({
          name,
          value: 10 + (index % 4),
          ts: now - 3 * HOUR + index * 3 * MINUTE,
        })),
      });
    }
    const boardWide = now - 2 * HOUR;
    const apiDeploy = now - 30 * MINUTE;
    await env.publisher.publish({
      type: 'event',
      level: 'info',
      title: 'Maintenance window',
      annotate: true,
      ts: boardWide,
    });
    await env.publisher.publish({
      type: 'event',
      level: 'info',
      title: 'Deploy api v2',
      service: 'api',
      annotate: true,
      ts: apiDeploy,
    });
    await env.publisher.publish({
      type: 'event',
      level: 'warn',
      title: 'Not a marker',
      service: 'api',
      ts: now - HOUR,
    });
    await logInThroughForm(page, app.url, env.username, env.password, '/b/main?range=6h');

    const titles = (chart: ChartProbe) =>
      chart.markers.map((marker) => marker.title.replace(/^\d\d:\d\d /, ''));
    const api = await waitForChart(
      page,
      'api.latency',
      (c) => c.range === '6h' && c.markers.length === 2,
      'api markers',
    );
    expect(titles(api)).to.deep.equal(['Maintenance window', 'Deploy api v2']);
    expect(api.markers.map((marker) => marker.ts)).to.deep.equal([boardWide, apiDeploy]);
    const db = await waitForChart(page, 'db.connections', (c) => c.markers.length === 1, 'db markers');
    expect(titles(db)).to.deep.equal(['Maintenance window']);
    // At the right time: where the x scale puts its ts (within 2 px).
    for (const marker of [...api.markers, ...db.markers]) {
      const chart = marker.title.includes('api') ? api : db;
      const expected =
        chart.plot.left +
        ((marker.ts - chart.plot.from) / (chart.plot.to - chart.plot.from)) * chart.plot.width;
      expect(marker.x).to.be.closeTo(expected, 2);
    }

    // A live annotation for the db service: on the db chart at once, not on the api chart.
    await env.publisher.publish({
      type: 'event',
      level: 'error',
      title: 'Failover db',
      service: 'db',
      annotate: true,
    });
    const dbLive = await waitForChart(
      page,
      'db.connections',
      (c) => c.markers.length === 2,
      'live db marker',
      5000,
    );
    expect(titles(dbLive)).to.deep.equal(['Maintenance window', 'Failover db']);
    expect(titles((await probe(page, 'api.latency'))!)).to.deep.equal([
      'Maintenance window',
      'Deploy api v2',
    ]);
    // Another a moment later: at 6 hours (54 s a pixel) it joins the line just drawn, titled with it.
    await env.publisher.publish({
      type: 'event',
      level: 'info',
      title: 'Failover done',
      service: 'db',
      annotate: true,
    });
    const joined = await waitForChart(
      page,
      'db.connections',
      (c) => c.markers.length === 3,
      'joined db marker',
      5000,
    );
    expect(titles(joined)).to.deep.equal(['Maintenance window', 'Failover db', 'Failover done']);
    expect(joined.markers[2]!.x).to.equal(joined.markers[1]!.x);
    const dbChart = page.locator('[data-metric="db.connections"]');
    await dbChart.locator('.chart-area').hover({ position: { x: joined.markers[2]!.x - 1, y: 40 } });
    expect(await dbChart.locator('.chart-marker-label').textContent()).to.match(
      /^\d\d:\d\d Failover db · \d\d:\d\d Failover done$/,
    );

    // The title on hover: the pointer near a line (where the probe says it is drawn) shows its title.
    const apiChart = page.locator('[data-metric="api.latency"]');
    const apiArea = apiChart.locator('.chart-area');
    const apiButton = apiChart.locator('.chart-marker');
    const apiLabel = apiChart.locator('.chart-marker-label');
    const [maintenance, deploy] = api.markers;
    await apiArea.hover({ position: { x: deploy!.x + 2, y: 40 } });
    expect(await apiLabel.isVisible()).to.equal(true);
    expect(await apiLabel.textContent()).to.match(/^\d\d:\d\d Deploy api v2$/);
    expect(await apiButton.getAttribute('aria-label')).to.match(
      /^Deploy api v2, \d\d:\d\d \(annotation 2 of 2; /,
    );
    // Between the lines, no title.
    await apiArea.hover({ position: { x: (maintenance!.x + deploy!.x) / 2, y: 40 } });
    expect(await apiLabel.isVisible()).to.equal(false);
    await page.mouse.move(0, 0);
    // And on keyboard focus: one stop per chart, on its first line; the arrow keys move to the next.
    await page.locator('#chart-range').focus();
    await page.keyboard.press('Tab');
    const focused = apiChart.locator('.chart-marker:focus');
    expect(await focused.count()).to.equal(1);
    expect(await apiLabel.isVisible()).to.equal(true);
    expect(await apiLabel.textContent()).to.match(/^\d\d:\d\d Maintenance window$/);
    const centre = async () => {
      const [button, area] = await Promise.all([focused.boundingBox(), apiArea.boundingBox()]);
      return button && area ? button.x + button.width / 2 - area.x : NaN;
    };
    expect(await centre()).to.be.closeTo(maintenance!.x, 1);
    await page.keyboard.press('ArrowRight');
    expect(await apiLabel.textContent()).to.match(/^\d\d:\d\d Deploy api v2$/);
    expect(await focused.getAttribute('aria-label')).to.match(
      /^Deploy api v2, \d\d:\d\d \(annotation 2 of 2; /,
    );
    expect(await centre()).to.be.closeTo(deploy!.x, 1);

    // In the 15-minute view only annotations of the last 15 minutes show.
    await page.locator('#chart-range').selectOption('15m');
    const recent = await waitForChart(page, 'db.connections', (c) => c.range === '15m', '15 min');
    expect(titles(recent)).to.deep.equal(['Failover db', 'Failover done']);
  });

  it('spreads the redraws of the charts in view over the redraw interval instead of drawing them all in one render', async function () {
    // Twelve charts fed a point each every 200 ms: all are due whenever their 2-s interval (15 minutes)
    // allows. Drawn together at first, they must then take turns (docs/dashboard.md, "Performance"):
    // measured, 1-2 charts a render with turns, 3-5 without (all due at once, split by the draw budget).
    const names = Array.from({ length: 12 }, (_, index) => `turns.m${String(index).padStart(2, '0')}`);
    for (const name of names) await env.publisher.publish({ type: 'metric', name, value: 1 });
    await page.setViewportSize({ width: 1280, height: 3000 });
    await logInThroughForm(page, app.url, env.username, env.password);
    await waitForLive(page);
    for (const name of names) await waitForChart(page, name, (c) => c.range === '15m', `${name} drawn`);
    // Every draw of a chart writes its card's data-points attribute: record when, and which chart.
    await page.evaluate(() => {
      const draws: { name: string; at: number }[] = [];
      Reflect.set(globalThis, 'turnDraws', draws);
      new MutationObserver((records) => {
        for (const record of records) {
          const name = record.target instanceof Element ? record.target.getAttribute('data-metric') : null;
          if (name?.startsWith('turns.')) draws.push({ name, at: performance.now() });
        }
      }).observe(document.body, { subtree: true, attributeFilter: ['data-points'] });
    });
    for (let tick = 0; tick < 40; tick += 1) {
      for (const name of names) {
        await env.publisher.publish({ type: 'metric', name, value: tick % 7 });
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const draws = (await page.evaluate(() => Reflect.get(globalThis, 'turnDraws'))) as {
      name: string;
      at: number;
    }[];
    // The draws after the first interval (when the charts drawn together have reached their turns),
    // grouped by render (the draws of one render are milliseconds apart, renders 200 ms).
    const start = (draws[0]?.at ?? 0) + 3000;
    const renders: string[][] = [];
    let lastAt = -Infinity;
    for (const draw of draws.filter((entry) => entry.at >= start)) {
      if (draw.at - lastAt > 50) renders.push([]);
      renders.at(-1)!.push(draw.name);
      lastAt = draw.at;
    }
    const sizes = renders.map((render) => render.length);
    expect(Math.max(...sizes), `charts drawn per render: ${sizes.join(' ')}`).to.be.at.most(3);
    // Still every chart, about once per interval (2 s): none left behind, none drawn more often.
    for (const name of names) {
      const times = draws.filter((entry) => entry.name === name).map((entry) => entry.at);
      expect(times.length, name).to.be.within(3, 6);
      for (let index = 1; index < times.length; index += 1) {
        expect(times[index]! - times[index - 1]!, name).to.be.at.least(1000);
      }
    }
  });
});
