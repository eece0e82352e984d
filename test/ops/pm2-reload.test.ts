// Zero-downtime operations on a real PM2 cluster (ecosystem.config.cjs, temporary PM2_HOME, real Redis,
// real EventSource clients on the shared port): `pm2 reload` and a worker killed with SIGKILL lose no event.
import { expect } from 'chai';
import { useTestBed } from '../helpers/test-bed.ts';
import { waitForRestart } from './pm2-cluster.ts';
import { usePm2Cluster } from './pm2-fixture.ts';
import { expectEveryClientSawExactly, logIds, longestGapMs, publishSteadily } from './traffic.ts';
import { sleep } from '../helpers/sse-client.ts';

// Short reconnect delay so a client whose worker drains is back quickly; many streams on one session.
const WORKER_ENV = { SSE_RETRY_MS: '250', MAX_STREAMS_PER_SESSION: '100' };

describe('PM2 cluster: reload and crash', function () {
  this.timeout(180_000);
  const bed = useTestBed();
  const pm2 = usePm2Cluster(bed);

  it('delivers every event to 20 clients exactly once after de-duplication by id, in order, across three `pm2 reload`s at 50 events/s', async function () {
    const { cluster, clients } = await pm2.start({ clients: 20, env: WORKER_ENV });

    const publishing = publishSteadily(bed.client, bed.prefix, 50);
    const reloadMs: number[] = [];
    await sleep(1000);
    for (let round = 0; round < 3; round += 1) {
      const before = await cluster.workers();
      reloadMs.push(await cluster.reload());
      const after = await cluster.workers();
      // Every worker was replaced: a reload that did nothing would pass the rest trivially.
      expect(after.map((worker) => worker.pid)).to.have.length(2);
      for (const worker of after) expect(before.map((old) => old.pid)).not.to.include(worker.pid);
      await sleep(1000);
    }
    const published = await publishing.stop();

    const expected = await logIds(bed.client, bed.prefix, published[0]!, published.at(-1)!);
    expect(expected).to.deep.equal(published);
    const { duplicates } = await expectEveryClientSawExactly(clients, expected);

    const gaps = clients.map(longestGapMs);
    const reconnects = clients.map((recording) => recording.opens - 1);
    console.log(
      `      reload: ${published.length} events at 50/s to 20 clients, 3 reloads of 2 workers; ` +
        `reload durations ${reloadMs.map((ms) => `${Math.round(ms)} ms`).join(', ')}; ` +
        `longest gap a client saw ${Math.round(Math.max(...gaps))} ms ` +
        `(median of the clients' longest ${Math.round(median(gaps))} ms); ` +
        `reconnects ${sum(reconnects)}; duplicates ${duplicates} (asserted 0)`,
    );
    // Each reload ended streams on both old workers: every client reconnected at least three times.
    for (const count of reconnects) expect(count).to.be.at.least(3);
  });

  it('restarts a worker killed with SIGKILL, and its clients resume with nothing missing', async function () {
    const { cluster, clients } = await pm2.start({ clients: 10, env: WORKER_ENV });

    const publishing = publishSteadily(bed.client, bed.prefix, 50);
    await sleep(1000);
    const [victim] = await cluster.workers();
    process.kill(victim!.pid, 'SIGKILL');
    const killedAt = performance.now();
    const restarted = await waitForRestart(cluster, victim!.pmId, victim!.pid);
    const restartMs = performance.now() - killedAt;
    await cluster.waitForWorkers(2);
    await sleep(1000);
    const published = await publishing.stop();

    expect(restarted.restarts).to.be.at.least(1);
    const expected = await logIds(bed.client, bed.prefix, published[0]!, published.at(-1)!);
    expect(expected).to.deep.equal(published);
    await expectEveryClientSawExactly(clients, expected);
    // Some clients were on the killed worker and had to reconnect; the others never noticed.
    const reconnected = clients.filter((recording) => recording.opens > 1).length;
    expect(reconnected).to.be.within(1, clients.length - 1);
    console.log(
      `      crash: SIGKILL of pid ${victim!.pid}; PM2 restarted it as pid ${restarted.pid} in ` +
        `${Math.round(restartMs)} ms; ${reconnected}/10 clients reconnected; longest gap ` +
        `${Math.round(Math.max(...clients.map(longestGapMs)))} ms; ${published.length} events, none missing`,
    );
  });
});

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}
