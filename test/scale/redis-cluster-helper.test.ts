// The Redis Cluster test helper itself (test/helpers/redis-cluster.ts): 3 primaries + 3 replicas come up
// healthy, a key's slot is where CLUSTER KEYSLOT says, a SIGKILLed primary is replaced by its replica
// (which still has the key), and `redis-cli --cluster reshard` moves a slot with its keys.
import { expect } from 'chai';
import { childPids, listening } from '../helpers/leftovers.ts';
import { keySlot, redisCli, startTestCluster, type TestCluster } from '../helpers/redis-cluster.ts';

describe('test helper: Redis Cluster 3+3', function () {
  this.timeout(90_000);
  let cluster: TestCluster | undefined;

  after(async function () {
    await cluster?.close();
  });

  it('starts healthy, fails a killed primary over to its replica, and reshards a slot with its keys', async function () {
    cluster = await startTestCluster();
    const primaries = await cluster.primaries();
    expect(primaries).to.have.length(3);
    const views = await cluster.view();
    expect(views.filter((entry) => entry.flags.includes('slave'))).to.have.length(3);

    for (const key of ['{pb:alpha}:log', 'plain', '{}x', 'a{b}c']) {
      const fromRedis = Number(await redisCli(cluster.nodes[0]!.port, ['cluster', 'keyslot', key]));
      expect(keySlot(key), key).to.equal(fromRedis);
    }

    const key = '{pb:alpha}:log';
    const slot = keySlot(key);
    const owner = await cluster.primaryOf(slot);
    expect(await redisCli(owner.port, ['set', key, 'v1'])).to.match(/OK/);
    expect((await redisCli(owner.port, ['wait', '1', '2000'])).trim()).to.equal('1');

    await cluster.kill(owner);
    const { primary, ms } = await cluster.waitForFailover(owner);
    expect(primary.port).to.not.equal(owner.port);
    expect((await redisCli(primary.port, ['get', key])).trim()).to.equal('v1');
    await cluster.restart(owner);
    await cluster.waitForHealthy();
    expect(await cluster.primaries()).to.have.length(3);

    // Move the first slots of another primary, up to and including a key's slot, to the new primary.
    const others = (await cluster.primaries()).filter((entry) => entry.node.port !== primary.port);
    const source = others[0]!;
    const first = source.ranges[0]![0];
    let name = 0;
    let target = '';
    while (!target) {
      const candidate = `{m${name++}}`;
      const candidateSlot = keySlot(candidate);
      if (candidateSlot >= first && candidateSlot < first + 30) target = candidate;
    }
    await redisCli(source.node.port, ['set', target, 'moving']);
    const count = keySlot(target) - first + 1;
    const started = performance.now();
    await cluster.reshard(source.node, primary, count);
    const reshardMs = performance.now() - started;
    await cluster.waitForHealthy();
    expect((await cluster.primaryOf(keySlot(target))).port).to.equal(primary.port);
    expect((await redisCli(primary.port, ['get', target])).trim()).to.equal('moving');
    // close() leaves nothing behind: no process, no listener.
    const pids = cluster.nodes.map((node) => node.pid);
    const ports = cluster.nodes.map((node) => node.port);
    expect(pids.every((pid) => pid !== undefined)).to.equal(true);
    await cluster.close();
    cluster = undefined;
    expect(childPids().filter((pid) => pids.includes(pid))).to.deep.equal([]);
    for (const port of ports) expect(await listening(port), `port ${port}`).to.equal(false);
    console.log(
      `      cluster: failover took ${Math.round(ms)} ms after the kill; reshard of ${count} slots ` +
        `${Math.round(reshardMs)} ms`,
    );
  });
});
