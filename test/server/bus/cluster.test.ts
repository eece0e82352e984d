// pulseboard on a real Redis Cluster (3 primaries + 3 replicas, redis-server processes started here):
// per-board routing of the sequencing script, a board's shard channel followed only while it has a stream,
// the gap fill of one board after its shard's pub/sub connection is cut, WAIT failing when the shard's
// replica cannot acknowledge, and the durable input exactly once per board across workers.
import { expect } from 'chai';
import { boardKeys, INGEST_STREAM_FIELD, redisNames } from '../../../shared/keys.ts';
import { createSequencer, ReplicationTimeout } from '../../../shared/publisher.ts';
import { BoardStore } from '../../../server/auth/boards.ts';
import { loadConfig } from '../../../server/config.ts';
import { createLogger } from '../../../server/log.ts';
import { startPulseboard, type Pulseboard } from '../../../server/pulseboard.ts';
import type { RedisClient } from '../../../server/redis.ts';
import { createConnection } from '../../../server/redis/topology.ts';
import {
  keySlot,
  redisCli,
  startTestCluster,
  type ClusterNode,
  type TestCluster,
} from '../../helpers/redis-cluster.ts';
import { openStream, sleep, type RecordedStream } from '../../helpers/sse-client.ts';
import { uniquePrefix } from '../../helpers/app.ts';

const ADMIN_PASSWORD = 'cluster-admin-password';

describe('on a Redis Cluster (3 primaries + 3 replicas)', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let client: RedisClient;
  let prefix: string;
  let apps: Pulseboard[] = [];
  let streams: RecordedStream[] = [];
  /** One board per primary, by shard order. */
  let boards: string[];
  let primaries: ClusterNode[];

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
  beforeEach(async function () {
    prefix = uniquePrefix();
    const shards = await cluster.primaries();
    primaries = shards.map((shard) => shard.node);
    boards = shards.map((shard, index) => {
      for (let n = 0; ; n += 1) {
        const slot = keySlot(`{${prefix}:b${index}-${n}}`);
        if (shard.ranges.some(([first, last]) => slot >= first && slot <= last)) return `b${index}-${n}`;
      }
    });
    const store = new BoardStore(client, redisNames(prefix));
    for (const board of boards) await store.add(board, board);
  });
  afterEach(async function () {
    for (const stream of streams) stream.close();
    streams = [];
    await Promise.allSettled(apps.map((app) => app.stop()));
    apps = [];
  });

  async function startApp(): Promise<Pulseboard> {
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      REDIS_CLUSTER_NODES: cluster.seeds,
      PULSEBOARD_PREFIX: prefix,
      PULSEBOARD_ADMIN_PASSWORD: ADMIN_PASSWORD,
      REDIS_WAIT_TIMEOUT_MS: '300',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    });
    const app = await startPulseboard(config, {
      log: createLogger(config.LOG_LEVEL),
      defaultMetrics: false,
      boardLingerMs: 200,
    });
    apps.push(app);
    return app;
  }

  async function adminCookie(app: Pulseboard): Promise<Record<string, string>> {
    const response = await fetch(`${app.url}/api/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: app.url },
      body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
    });
    expect(response.status, await response.clone().text()).to.equal(200);
    const cookie = response.headers
      .getSetCookie()
      .map((line) => line.split(';')[0])
      .join('; ');
    return { Cookie: cookie };
  }

  function stream(app: Pulseboard, headers: Record<string, string>, board: string): RecordedStream {
    const opened = openStream(`${app.url}/events?boards=${board}`, { headers });
    streams.push(opened);
    return opened;
  }

  /** Subscribers of a shard channel on the node serving it. */
  async function subscribersOn(node: ClusterNode, channel: string): Promise<number> {
    const reply = (await redisCli(node.port, ['PUBSUB', 'SHARDNUMSUB', channel])).trim().split('\n');
    return Number(reply[1] ?? 0);
  }

  it('sequences a multi-board publish as one call per board on its own shard, and follows a board only while it has a stream', async function () {
    const app = await startApp();
    const headers = await adminCookie(app);
    const sequencer = createSequencer(client, { prefix });
    const ids = await sequencer.sequence(
      boards.map((board, index) => ({ type: 'metric', board, name: 'm', value: index })),
    );
    expect(ids).to.have.length(3);
    for (const [index, board] of boards.entries()) {
      // The log is on the board's primary: a plain redis-cli there reads it without a redirection.
      const length = await redisCli(primaries[index]!.port, ['XLEN', boardKeys(prefix, board).log]);
      expect(length.trim(), board).to.equal('1');
    }

    const channel = boardKeys(prefix, boards[1]!).channel;
    expect(await subscribersOn(primaries[1]!, channel)).to.equal(0);
    const first = stream(app, headers, boards[1]!);
    await first.waitForOpen();
    expect(await subscribersOn(primaries[1]!, channel)).to.equal(1);
    expect(await subscribersOn(primaries[0]!, boardKeys(prefix, boards[0]!).channel)).to.equal(0);
    const second = stream(app, headers, boards[1]!);
    await second.waitForOpen();
    await sequencer.sequence([{ type: 'metric', board: boards[1]!, name: 'm', value: 9 }]);
    await first.waitFor((events) => events.length === 1, 5000, 'the event');
    await second.waitFor((events) => events.length === 1, 5000, 'the event');
    first.close();
    await sleep(500);
    expect(await subscribersOn(primaries[1]!, channel), 'one stream left').to.equal(1);
    second.close();
    const deadline = Date.now() + 5000;
    while ((await subscribersOn(primaries[1]!, channel)) !== 0 && Date.now() < deadline) await sleep(100);
    expect(await subscribersOn(primaries[1]!, channel), 'after the last stream left').to.equal(0);
  });

  it('replays only the board whose shard connection was cut: every event once, in order, while other shards stay live', async function () {
    const app = await startApp();
    const headers = await adminCookie(app);
    const watched = boards.map((board) => stream(app, headers, board));
    await Promise.all(watched.map((each) => each.waitForOpen()));
    const sequencer = createSequencer(client, { prefix });
    const total = 300;
    let killed = 0;
    for (let index = 0; index < total; index += 1) {
      if (index % 60 === 30) {
        // Cut the pub/sub connections on shard 0 only (CLIENT KILL TYPE pubsub on its primary).
        killed += Number(await redisCli(primaries[0]!.port, ['CLIENT', 'KILL', 'TYPE', 'pubsub']));
      }
      await sequencer.sequence(boards.map((board) => ({ type: 'metric', board, name: 'n', value: index })));
      await sleep(5);
    }
    expect(killed).to.be.at.least(5);
    for (const [index, each] of watched.entries()) {
      await each.waitFor((events) => events.length >= total, 20_000, `${total} events of ${boards[index]}`);
      await sleep(300);
      const values = each.events.map((event) => (event.type === 'metric' ? event.value : -1));
      expect(values, boards[index]).to.deep.equal(Array.from({ length: total }, (_, n) => n));
      const log = await client.xRange(boardKeys(prefix, boards[index]!).log, '-', '+');
      expect(each.events.map((event) => event.id)).to.deep.equal((log ?? []).map((entry) => entry.id));
    }
  });

  it('fails an acknowledged publish with ReplicationTimeout when the shard replica cannot acknowledge (SIGSTOP), and succeeds once it can', async function () {
    const view = await cluster.view();
    const primary = primaries[2]!;
    const replicaView = view.find((node) => node.primaryId === primary.id);
    const replica = cluster.nodes.find((node) => node.port === replicaView?.port);
    expect(replica, 'the replica of shard 2').to.not.equal(undefined);
    const acked = client.duplicate();
    acked.on('error', () => undefined);
    await acked.connect();
    const sequencer = createSequencer(acked, { prefix, waitReplicas: 'auto', waitTimeoutMs: 300 });
    try {
      const event = { type: 'metric' as const, board: boards[2]!, name: 'w', value: 1 };
      expect(await sequencer.sequence([event])).to.have.length(1);
      process.kill(replica!.pid!, 'SIGSTOP');
      let caught: unknown;
      const started = Date.now();
      try {
        await sequencer.sequence([event]);
      } catch (error) {
        caught = error;
      } finally {
        process.kill(replica!.pid!, 'SIGCONT');
      }
      expect(caught).to.be.instanceOf(ReplicationTimeout);
      expect((caught as ReplicationTimeout).message).to.match(/0 of 1 required Redis replica/);
      expect(Date.now() - started).to.be.below(3000);
      // Other shards are not held up by the stopped replica.
      expect(await sequencer.sequence([{ ...event, board: boards[0]! }])).to.have.length(1);
      await sleep(200);
      expect(await sequencer.sequence([event])).to.have.length(1);
    } finally {
      await acked.quit().catch(() => undefined);
    }
  });

  it('sequences durable-input entries naming boards on every shard exactly once with two workers', async function () {
    await Promise.all([startApp(), startApp()]);
    const names = redisNames(prefix);
    const count = 60;
    for (let index = 0; index < count; index += 1) {
      const event =
        index % 2 === 0
          ? {
              type: 'metrics',
              board: boards[index % 3],
              points: [
                { name: 'd', value: index },
                { name: 'e', value: index },
              ],
            }
          : { type: 'metric', board: boards[index % 3], name: 'd', value: index };
      await client.sendCommand(['XADD', names.ingestStream, '*', INGEST_STREAM_FIELD, JSON.stringify(event)]);
    }
    const expected = boards.map((_board, b) =>
      Array.from({ length: count }, (_, n) => n)
        .filter((n) => n % 3 === b)
        .reduce((sum, n) => sum + (n % 2 === 0 ? 2 : 1), 0),
    );
    const deadline = Date.now() + 30_000;
    const lengths = async () => Promise.all(boards.map((board) => client.xLen(boardKeys(prefix, board).log)));
    while (JSON.stringify(await lengths()) !== JSON.stringify(expected) && Date.now() < deadline)
      await sleep(200);
    await sleep(500);
    expect(await lengths()).to.deep.equal(expected);
    expect(await client.xLen(names.ingestStream)).to.equal(0);
  });

  it('fills the gap of a board whose slot moved: the event published on the new primary before the re-subscription is delivered', async function () {
    const app = await startApp();
    const headers = await adminCookie(app);
    const board = boards[1]!;
    const [source, target] = [primaries[1]!, primaries[2]!];
    const slot = keySlot(`{${prefix}:${board}}`);
    const watched = stream(app, headers, board);
    await watched.waitForOpen();
    const sequencer = createSequencer(client, { prefix });
    const publish = async (value: number) =>
      sequencer.sequence([{ type: 'metric', board, name: 'm', value }]);
    await publish(0);
    await watched.waitFor((events) => events.length === 1, 5000, 'the first event');
    // The steps of `redis-cli --cluster reshard`, with a publish between the new owner taking the slot and
    // the old one learning it: that event goes out on the new primary, where this worker has no subscription
    // yet, and the old primary tells the subscriber (SUNSUBSCRIBE) only afterwards.
    await redisCli(target.port, ['CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', source.id]);
    await redisCli(source.port, ['CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', target.id]);
    const keys = (await redisCli(source.port, ['CLUSTER', 'GETKEYSINSLOT', String(slot), '1000']))
      .split('\n')
      .filter((key) => key !== '');
    const [host, port] = target.address.split(':') as [string, string];
    await redisCli(source.port, ['MIGRATE', host, port, '', '0', '5000', 'KEYS', ...keys]);
    await redisCli(target.port, ['CLUSTER', 'SETSLOT', String(slot), 'NODE', target.id]);
    await publish(1);
    for (const node of primaries)
      await redisCli(node.port, ['CLUSTER', 'SETSLOT', String(slot), 'NODE', target.id]);
    expect((await cluster.primaryOf(slot)).port, 'the board moved').to.equal(target.port);
    for (let value = 2; value < 6; value += 1) {
      await publish(value);
      await sleep(100);
    }
    await watched.waitFor((events) => events.length >= 6, 10_000, '6 events');
    await sleep(300);
    expect(watched.events.map((event) => (event.type === 'metric' ? event.value : -1))).to.deep.equal([
      0, 1, 2, 3, 4, 5,
    ]);
    const log = await client.xRange(boardKeys(prefix, board).log, '-', '+');
    expect(watched.events.map((event) => event.id)).to.deep.equal((log ?? []).map((entry) => entry.id));
  });
});
