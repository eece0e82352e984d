// Two pulseboard hosts (two PM2 clusters on different ports, one Redis) behind HAProxy with the repo's
// deploy/haproxy.cfg: when one host stops, its clients come back through the balancer to the other one
// and resume by id, with no event missing; /metrics through the balancer counts the workers of both.
import { expect } from 'chai';
import { login } from '../helpers/auth.ts';
import { useTestBed } from '../helpers/test-bed.ts';
import { sleep, until } from '../helpers/sse-client.ts';
import { startHaproxy, type Balancer } from './haproxy.ts';
import { startPm2Cluster, type Pm2Cluster } from './pm2-cluster.ts';
import { getOnNewConnection, sampleValue } from './prometheus-text.ts';
import {
  expectEveryClientSawExactly,
  logIds,
  longestGapMs,
  openClients,
  publishSteadily,
  type RecordingClient,
} from './traffic.ts';

const WORKER_ENV = { SSE_RETRY_MS: '250', MAX_STREAMS_PER_SESSION: '100', TRUST_PROXY: 'true' };

/** Polls /healthz through the balancer until both servers have answered (both are UP in HAProxy). */
async function waitForBothHostsUp(balancer: Balancer): Promise<void> {
  const seen = new Set<string>();
  const deadline = Date.now() + 20_000;
  while (seen.size < 2) {
    if (Date.now() > deadline) throw new Error(`only ${[...seen].join(', ')} up:\n${balancer.output()}`);
    const { status, headers } = await getOnNewConnection(`${balancer.url}/healthz`);
    const server = headers['x-served-by'];
    if (status === 200 && typeof server === 'string') seen.add(server);
    await sleep(100);
  }
}

describe('two hosts behind HAProxy', function () {
  this.timeout(180_000);
  const bed = useTestBed();
  let hosts: Pm2Cluster[] = [];
  let balancer: Balancer | undefined;
  let clients: RecordingClient[] = [];

  afterEach(async function () {
    for (const recording of clients) recording.close();
    clients = [];
    if (this.currentTest?.state === 'failed') {
      for (const host of hosts) console.log(await host.logs());
      console.log(balancer?.output());
    }
    await balancer?.stop();
    balancer = undefined;
    await Promise.allSettled(hosts.map((host) => host.kill()));
    hosts = [];
  });

  it('moves the clients of a stopped host to the other one through the balancer, with no event missing', async function () {
    const options = { redisUrl: bed.redis.url, prefix: bed.prefix, instances: 2, env: WORKER_ENV };
    hosts = [await startPm2Cluster(options), await startPm2Cluster(options)];
    const [host1, host2] = hosts;
    balancer = await startHaproxy(`127.0.0.1:${host1!.port}`, `127.0.0.1:${host2!.port}`);
    await waitForBothHostsUp(balancer);

    // One scrape through the balancer covers every worker of every host sharing the Redis.
    const scrape = await getOnNewConnection(`${balancer.url}/metrics`);
    expect(sampleValue(scrape.body, 'pulseboard_cluster_workers', { state: 'answered' })).to.equal(4);

    const { headers } = await login(balancer.url, { redisUrl: bed.redis.url, prefix: bed.prefix });
    clients = await openClients(20, `${balancer.url}/events`, headers);
    const onHost1 = clients.filter((recording) => recording.servedBy[0] === 'host1');
    const onHost2 = clients.filter((recording) => recording.servedBy[0] === 'host2');
    expect(onHost1.length + onHost2.length).to.equal(clients.length);
    expect(onHost1.length, 'clients on host1').to.be.within(1, clients.length - 1);

    const publishing = publishSteadily(bed.client, bed.prefix, 50);
    await sleep(1000);
    const stoppedAt = performance.now();
    await host1!.kill();
    const stopMs = performance.now() - stoppedAt;
    await until(
      () => onHost1.every((recording) => recording.servedBy.at(-1) === 'host2' && recording.opens > 1),
      15_000,
      "host1's clients to reopen their streams on host2",
    );
    const movedMs = performance.now() - stoppedAt;
    await sleep(1000);
    const published = await publishing.stop();

    const expected = await logIds(bed.client, bed.prefix, published[0]!, published.at(-1)!);
    expect(expected).to.deep.equal(published);
    const { duplicates } = await expectEveryClientSawExactly(clients, expected);
    // host2's clients never noticed; nobody got a balancer error (that would have ended EventSource).
    for (const recording of onHost2) expect(recording.opens).to.equal(1);
    for (const recording of clients) expect(recording.servedBy.at(-1)).to.equal('host2');
    console.log(
      `      two hosts: ${onHost1.length}/20 clients on host1; pm2 kill took ${Math.round(stopMs)} ms; ` +
        `all back on host2 ${Math.round(movedMs)} ms after the stop began; longest gap ` +
        `${Math.round(Math.max(...onHost1.map(longestGapMs)))} ms; ${published.length} events, none missing, ` +
        `${duplicates} duplicates (asserted 0)`,
    );
  });
});
