import { expect } from 'chai';
import { createPublisher } from '../../../shared/publisher.ts';
import type { TestApp } from '../../helpers/app.ts';
import { until } from '../../helpers/sse-client.ts';
import { useTestBed } from '../../helpers/test-bed.ts';
import { sampleValue, samples } from '../../ops/prometheus-text.ts';

describe('cluster-wide /metrics', function () {
  this.timeout(30_000);
  const bed = useTestBed({ tolerateRedisErrors: true }); // one test stops Redis on purpose
  // In start order, which bed.apps (in ready order) does not promise.
  let apps: TestApp[] = [];

  async function startApps(count: number, env: Record<string, string> = {}): Promise<TestApp[]> {
    apps = await Promise.all(
      Array.from({ length: count }, () => bed.startApp({ METRICS_COLLECT_TIMEOUT_MS: '300', ...env })),
    );
    return apps;
  }

  /** Opens `perApp[i]` streams on app i, publishes `events` events and waits until every stream has them. */
  async function deliver(perApp: number[], events: number): Promise<number> {
    const { headers } = await bed.login(apps[0]!.url);
    perApp.forEach((count, index) => {
      for (let opened = 0; opened < count; opened += 1) {
        bed.openStream(`${apps[index]!.url}/events`, { headers });
      }
    });
    await Promise.all(bed.streams.map((stream) => stream.waitForOpen()));
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    for (let value = 0; value < events; value += 1) {
      await publisher.publish({ type: 'metric', name: 'cluster.test', value });
    }
    await Promise.all(bed.streams.map((stream) => stream.waitFor((got) => got.length === events)));
    return events * bed.streams.length;
  }

  async function scrape(app: TestApp, query = '', headers: Record<string, string> = {}) {
    const response = await fetch(`${app.url}/metrics${query}`, { headers });
    return { status: response.status, headers: response.headers, body: await response.text() };
  }

  /** Scrapes until `accept` holds (workers re-register on their next heartbeat after Redis returns). */
  async function pollScrape(app: TestApp, accept: (body: string) => boolean): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { body } = await scrape(app);
      if (accept(body)) return;
      if (Date.now() > deadline) throw new Error(`metrics never became as expected:\n${body}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  it('shows the totals of every worker of the installation, whichever worker is scraped', async function () {
    await startApps(3);
    const expected = await deliver([1, 2, 0], 5);
    for (const app of apps) {
      const { status, headers, body } = await scrape(app);
      expect(status).to.equal(200);
      expect(headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
      expect(sampleValue(body, 'pulseboard_deliveries_total')).to.equal(expected);
      expect(sampleValue(body, 'pulseboard_sse_connections')).to.equal(3);
      expect(sampleValue(body, 'pulseboard_cluster_workers', { state: 'answered' })).to.equal(3);
      expect(sampleValue(body, 'pulseboard_cluster_workers', { state: 'missing' })).to.equal(0);
      expect(sampleValue(body, 'pulseboard_cluster_scrape_complete')).to.equal(1);
    }
  });

  it('breaks the totals down by worker with ?scope=workers', async function () {
    await startApps(2);
    await deliver([1, 2], 4);
    const { body } = await scrape(apps[0]!, '?scope=workers');
    const byWorker = Object.fromEntries(
      samples(body, 'pulseboard_deliveries_total').map((sample) => [sample.labels.worker, sample.value]),
    );
    expect(byWorker).to.deep.equal({
      [apps[0]!.clusterMetrics.workerId]: 4,
      [apps[1]!.clusterMetrics.workerId]: 8,
    });
  });

  it('keeps the counts of a worker that stopped gracefully in the totals, folded into one retired entry', async function () {
    await startApps(2);
    const expected = await deliver([1, 2], 3);
    for (const stream of bed.streams) stream.close();
    await apps[1]!.stop();

    const { body } = await scrape(apps[0]!);
    expect(sampleValue(body, 'pulseboard_deliveries_total')).to.equal(expected);
    expect(sampleValue(body, 'pulseboard_cluster_workers', { state: 'answered' })).to.equal(1);
    // Counters stay, gauges of the stopped worker do not: its streams are gone.
    expect(sampleValue(body, 'pulseboard_sse_connections')).to.equal(0);
    const { body: detail } = await scrape(apps[0]!, '?scope=workers');
    expect(sampleValue(detail, 'pulseboard_deliveries_total', { worker: 'retired' })).to.equal(6);
    // The scrape compacted the retired entries into one, so the hash does not grow with every deploy.
    expect(await bed.client.hKeys(`{${bed.prefix}}:metrics:retired`)).to.deep.equal(['*merged']);
    expect(sampleValue((await scrape(apps[0]!)).body, 'pulseboard_deliveries_total')).to.equal(expected);
  });

  it('answers after the collect timeout without a registered worker that stays silent, and says so', async function () {
    await startApps(2);
    const expected = await deliver([1, 1], 2);
    const [seconds] = await bed.client.time();
    // A worker that registered but never answers (hung, or on a host cut off from pub/sub).
    await bed.client.zAdd(`{${bed.prefix}}:workers`, {
      score: Number(seconds) * 1000,
      value: 'elsewhere:1:dead',
    });
    const started = performance.now();
    const { body } = await scrape(apps[0]!);
    const elapsed = performance.now() - started;
    expect(elapsed).to.be.at.least(280);
    expect(sampleValue(body, 'pulseboard_deliveries_total')).to.equal(expected);
    expect(sampleValue(body, 'pulseboard_cluster_workers', { state: 'answered' })).to.equal(2);
    expect(sampleValue(body, 'pulseboard_cluster_workers', { state: 'missing' })).to.equal(1);
    expect(sampleValue(body, 'pulseboard_cluster_scrape_complete')).to.equal(0);
  });

  it('forgets a worker whose heartbeats stopped', async function () {
    await startApps(1);
    const [seconds] = await bed.client.time();
    await bed.client.zAdd(`{${bed.prefix}}:workers`, {
      score: (Number(seconds) - 60) * 1000,
      value: 'gone:1:dead',
    });
    const { body } = await scrape(apps[0]!);
    expect(sampleValue(body, 'pulseboard_cluster_workers', { state: 'missing' })).to.equal(0);
    expect(await bed.client.zRange(`{${bed.prefix}}:workers`, 0, -1)).to.deep.equal([
      apps[0]!.clusterMetrics.workerId,
    ]);
  });

  it("answers at once with the scraped worker's own metrics, marked incomplete, while Redis is down", async function () {
    if (!bed.redis.owned) this.skip();
    await startApps(2);
    await bed.redis.stop();
    try {
      await until(() => !apps[0]!.redis.isReady, 5000, 'the worker to notice');
      const started = performance.now();
      const { status, body } = await scrape(apps[0]!);
      expect(performance.now() - started).to.be.below(500);
      expect(status).to.equal(200);
      expect(sampleValue(body, 'pulseboard_cluster_scrape_complete')).to.equal(0);
      expect(sampleValue(body, 'pulseboard_cluster_workers', { state: 'answered' })).to.equal(1);
    } finally {
      await bed.redis.start();
    }
    await until(() => apps.every((app) => app.redis.isReady), 10_000, 'the workers to reconnect');
    await pollScrape(apps[0]!, (body) => sampleValue(body, 'pulseboard_cluster_scrape_complete') === 1);
  });

  it('requires the bearer METRICS_TOKEN when one is set, and never a session', async function () {
    const token = 'metrics-token-0123456789';
    await startApps(1, { METRICS_TOKEN: token });
    const missing = await scrape(apps[0]!);
    expect(missing.status).to.equal(401);
    expect(missing.headers.get('www-authenticate')).to.equal('Bearer realm="metrics"');
    expect(JSON.parse(missing.body)).to.deep.include({
      error: { code: 'unauthorized', message: 'a valid metrics bearer token is required' },
    });
    expect((await scrape(apps[0]!, '', { Authorization: `Bearer ${token}x` })).status).to.equal(401);
    const allowed = await scrape(apps[0]!, '', { Authorization: `Bearer ${token}` });
    expect(allowed.status).to.equal(200);
    expect(sampleValue(allowed.body, 'pulseboard_cluster_workers', { state: 'answered' })).to.equal(1);
  });

  it('answers 400 naming the field for an unknown scope', async function () {
    await startApps(1);
    const { status, body } = await scrape(apps[0]!, '?scope=everything');
    expect(status).to.equal(400);
    expect(JSON.parse(body)).to.deep.include({
      error: { code: 'invalid_input', message: 'scope: must be one of cluster, workers', field: 'scope' },
    });
  });
});
