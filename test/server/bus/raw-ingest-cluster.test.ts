// Raw PUBLISH on a real Redis Cluster (3 primaries + 3 replicas): publishers on different nodes, two
// workers, every message sequenced exactly once (docs/events.md, "Raw PUBLISH: exactly once"). Each node
// delivers classic pub/sub in its own order; the workers agree on positions because their classic
// subscriber is on the installation slot's primary (server/redis/topology.ts, pinClassicPubSub).
import { expect } from 'chai';
import { createClient } from 'redis';
import { boardKeys, redisNames } from '../../../shared/keys.ts';
import { BoardStore } from '../../../server/auth/boards.ts';
import { loadConfig } from '../../../server/config.ts';
import { createLogger } from '../../../server/log.ts';
import { startPulseboard, type Pulseboard } from '../../../server/pulseboard.ts';
import type { RedisClient } from '../../../server/redis.ts';
import { createConnection, primaryAddressOf } from '../../../server/redis/topology.ts';
import { keySlot, redisCli, startTestCluster, type TestCluster } from '../../helpers/redis-cluster.ts';
import { sleep } from '../../helpers/sse-client.ts';
import { uniquePrefix } from '../../helpers/app.ts';

describe('raw PUBLISH on a Redis Cluster (3 primaries + 3 replicas)', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let client: RedisClient;
  let apps: Pulseboard[] = [];

  before(async function () {
    cluster = await startTestCluster();
    client = createConnection(
      { REDIS_URL: 'redis://unused', REDIS_CLUSTER_NODES: cluster.seeds.split(','), REDIS_TLS: false },
      { reconnectStrategy: () => 100, connectTimeout: 2000 },
    );
    client.on('error', () => undefined);
    await client.connect();
  });
  after(async function () {
    await client?.quit().catch(() => undefined);
    await cluster?.close();
  });
  afterEach(async function () {
    await Promise.allSettled(apps.map((app) => app.stop()));
    apps = [];
  });

  async function startApp(prefix: string): Promise<Pulseboard> {
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      REDIS_CLUSTER_NODES: cluster.seeds,
      PULSEBOARD_PREFIX: prefix,
      PULSEBOARD_ADMIN_PASSWORD: 'cluster-admin-password',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    });
    const app = await startPulseboard(config, { log: createLogger(config.LOG_LEVEL), defaultMetrics: false });
    apps.push(app);
    return app;
  }

  async function numsub(port: number, channel: string): Promise<number> {
    const [, count] = (await redisCli(port, ['PUBSUB', 'NUMSUB', channel])).trim().split('\n');
    return Number(count);
  }

  /** 3 publishers, one per live primary, interleaved; every value once in the board's log, in order per publisher. */
  async function publishAndCheck(prefix: string, board: string, perPublisher: number): Promise<void> {
    const channel = redisNames(prefix).ingestChannel;
    const before = ((await client.xRange(boardKeys(prefix, board).log, '-', '+')) ?? []).length;
    const shards = await cluster.primaries();
    const publishers = shards.map((shard) => createClient({ socket: { port: shard.node.port } }));
    try {
      await Promise.all(publishers.map((publisher) => publisher.connect()));
      const sent: Array<Promise<number>> = [];
      for (let n = 0; n < perPublisher; n += 1) {
        publishers.forEach((publisher, p) => {
          const value = p * 1000 + n;
          sent.push(publisher.publish(channel, JSON.stringify({ type: 'metric', board, name: 'n', value })));
        });
        if (n % 50 === 49) await sleep(1);
      }
      await Promise.all(sent);
      const expected = shards.flatMap((_shard, p) =>
        Array.from({ length: perPublisher }, (_, n) => p * 1000 + n),
      );
      const values = async () =>
        ((await client.xRange(boardKeys(prefix, board).log, '-', '+')) ?? [])
          .slice(before)
          .map((entry) => (JSON.parse(entry.message.e ?? '{}') as { value?: number }).value ?? -1);
      const deadline = Date.now() + 20_000;
      while ((await values()).length < expected.length && Date.now() < deadline) await sleep(200);
      await sleep(1000);
      const got = await values();
      const counts = new Map<number, number>();
      for (const value of got) counts.set(value, (counts.get(value) ?? 0) + 1);
      const twice = [...counts].filter(([, count]) => count > 1).map(([value]) => value);
      const missing = expected.filter((value) => !counts.has(value));
      expect({ twice: twice.length, missing: missing.length, total: got.length }).to.deep.equal({
        twice: 0,
        missing: 0,
        total: expected.length,
      });
      // Each publisher's own messages keep their order.
      for (const p of shards.keys()) {
        const own = got.filter((value) => Math.floor(value / 1000) === p);
        expect(own).to.deep.equal([...own].sort((a, b) => a - b));
      }
    } finally {
      await Promise.allSettled(publishers.map((publisher) => publisher.quit()));
    }
  }

  it('sequences 3 x 300 messages published on three different nodes exactly once with three workers, all subscribed on the installation primary', async function () {
    const prefix = uniquePrefix();
    const board = 'raw';
    await new BoardStore(client, redisNames(prefix)).add(board, board);
    await Promise.all([startApp(prefix), startApp(prefix), startApp(prefix)]);
    // Every worker's classic subscriber is on the primary of `{prefix}` (PUBSUB NUMSUB on each node).
    const installation = primaryAddressOf(client, `{${prefix}}`);
    const channel = redisNames(prefix).ingestChannel;
    for (const node of cluster.nodes) {
      expect(await numsub(node.port, channel), node.address).to.equal(node.address === installation ? 3 : 0);
    }
    await publishAndCheck(prefix, board, 300);
  });

  it("moves the workers' subscriptions to the new primary after the installation primary is killed, and stays exactly once", async function () {
    const prefix = uniquePrefix();
    const board = 'raw';
    await new BoardStore(client, redisNames(prefix)).add(board, board);
    await Promise.all([startApp(prefix), startApp(prefix)]);
    const channel = redisNames(prefix).ingestChannel;
    const killed = await cluster.primaryOf(keySlot(`{${prefix}}`));
    expect(await numsub(killed.port, channel)).to.equal(2);
    await cluster.kill(killed);
    const { primary } = await cluster.waitForFailover(killed);
    const deadline = Date.now() + 20_000;
    while ((await numsub(primary.port, channel)) < 2 && Date.now() < deadline) await sleep(200);
    expect(await numsub(primary.port, channel)).to.equal(2);
    for (const node of cluster.nodes) {
      if (node.alive && node !== primary) expect(await numsub(node.port, channel), node.address).to.equal(0);
    }
    // Both workers have counted from a marker on the new node before the publishers start.
    await sleep(1500);
    await publishAndCheck(prefix, board, 200);
  });
});
