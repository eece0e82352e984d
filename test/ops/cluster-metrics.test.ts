// GET /metrics through the shared port of a real PM2 cluster: every scrape, whichever worker answers it,
// shows the totals of the whole cluster (server/metrics/).
import { expect } from 'chai';
import { createPublisher } from '../../shared/publisher.ts';
import { useTestBed } from '../helpers/test-bed.ts';
import { until } from '../helpers/sse-client.ts';
import { usePm2Cluster } from './pm2-fixture.ts';
import { getOnNewConnection, sampleValue, samples } from './prometheus-text.ts';
import { dedupe } from './traffic.ts';

describe('PM2 cluster: /metrics', function () {
  this.timeout(120_000);
  const bed = useTestBed();
  const pm2 = usePm2Cluster(bed);

  it('reports deliveries = events x clients in each of ten scrapes of the shared port, with the per-worker split', async function () {
    const events = 40;
    const { cluster, clients } = await pm2.start({ clients: 6, env: { MAX_STREAMS_PER_SESSION: '100' } });
    const publisher = createPublisher(bed.client, { prefix: bed.prefix });
    for (let value = 0; value < events; value += 1) {
      await publisher.publish({ type: 'metric', name: 'ops.metrics', value });
    }
    await until(
      () => clients.every((recording) => dedupe(recording.received).ids.length === events),
      15_000,
      `every client to receive ${events} events`,
    );
    // Nobody reconnected, so no event was replayed: each was delivered live exactly once per bed.client.
    for (const recording of clients) expect(recording.opens).to.equal(1);
    for (const recording of clients) expect(dedupe(recording.received).duplicates).to.equal(0);

    const expected = events * clients.length;
    const totals: number[] = [];
    for (let scrape = 0; scrape < 10; scrape += 1) {
      const { status, body } = await getOnNewConnection(`${cluster.url}/metrics`);
      expect(status).to.equal(200);
      totals.push(sampleValue(body, 'pulseboard_deliveries_total') ?? Number.NaN);
      expect(sampleValue(body, 'pulseboard_cluster_workers', { state: 'answered' })).to.equal(2);
      expect(sampleValue(body, 'pulseboard_cluster_workers', { state: 'missing' })).to.equal(0);
      expect(sampleValue(body, 'pulseboard_sse_connections')).to.equal(clients.length);
    }
    expect(totals).to.deep.equal(Array(10).fill(expected));

    const { body } = await getOnNewConnection(`${cluster.url}/metrics?scope=workers`);
    const perWorker = samples(body, 'pulseboard_deliveries_total');
    const pids = (await cluster.workers()).map((worker) => String(worker.pid));
    expect(perWorker.map((sample) => sample.labels.worker?.split(':')[1]).sort()).to.deep.equal(pids.sort());
    // Both workers carry streams: the totals really are sums, not one worker's count.
    for (const sample of perWorker) expect(sample.value).to.be.above(0);
    expect(perWorker.reduce((total, sample) => total + sample.value, 0)).to.equal(expected);
    console.log(
      `      metrics: ${events} events x ${clients.length} clients; ten scrapes: ${totals.join(', ')}; ` +
        `per worker: ${perWorker.map((sample) => sample.value).join(' + ')}`,
    );
  });
});
