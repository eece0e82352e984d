// The Sentinel test helper itself (test/helpers/redis-sentinel.ts): one primary, one replica and three
// sentinels come up agreeing; a SIGKILLed primary is replaced by the replica (which still has what WAIT
// confirmed), and the old primary, restarted, rejoins as a replica.
import { expect } from 'chai';
import { childPids, listening } from '../helpers/leftovers.ts';
import { info, redisCli, until } from '../helpers/redis-cluster.ts';
import { startTestSentinels, type TestSentinels } from '../helpers/redis-sentinel.ts';

describe('test helper: Redis Sentinel (1 primary, 1 replica, 3 sentinels)', function () {
  this.timeout(90_000);
  let sentinels: TestSentinels | undefined;

  after(async function () {
    await sentinels?.close();
  });

  it('promotes the replica when the primary is killed, and takes the old primary back as a replica', async function () {
    sentinels = await startTestSentinels();
    const [first, second] = sentinels.data;
    expect((await sentinels.primary()).port).to.equal(first!.port);
    expect(await redisCli(first!.port, ['set', 'k', 'v1'])).to.match(/OK/);
    expect((await redisCli(first!.port, ['wait', '1', '2000'])).trim()).to.equal('1');

    await sentinels.kill(first!);
    const { primary, ms } = await sentinels.waitForFailover(first!);
    expect(primary.port).to.equal(second!.port);
    expect((await redisCli(second!.port, ['get', 'k'])).trim()).to.equal('v1');

    await sentinels.restart(first!);
    await sentinels.waitForHealthy();
    // The restarted node comes up as a primary and is turned into a replica by the sentinels a moment later.
    const role = await until(
      async () => {
        const current = (await info(first!.port, 'replication')).get('role');
        return current === 'slave' ? current : undefined;
      },
      30_000,
      'the old primary to rejoin as a replica',
    );
    expect(role).to.equal('slave');
    // close() leaves nothing behind: no process, no listener.
    const nodes = [...sentinels.data, ...sentinels.sentinels];
    const pids = nodes.map((node) => node.pid);
    expect(pids.every((pid) => pid !== undefined)).to.equal(true);
    await sentinels.close();
    sentinels = undefined;
    expect(childPids().filter((pid) => pids.includes(pid))).to.deep.equal([]);
    for (const node of nodes) expect(await listening(node.port), `port ${node.port}`).to.equal(false);
    console.log(`      sentinel: failover took ${Math.round(ms)} ms after the kill`);
  });
});
