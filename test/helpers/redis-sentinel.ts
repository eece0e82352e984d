// A real Sentinel set-up for the tests (docs/scaling.md, "Redis Sentinel"): one primary, one replica and
// three sentinels (quorum 2), each on a free loopback port with its own folder under one temp dir. Short
// down-after-milliseconds and failover-timeout make a failover take ~2-4 s. Everything it starts is killed
// (and the folder removed) by close(), or at process exit.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { distinctPort, info, redisCli, until } from './redis-cluster.ts';
import { track } from './redis-server.ts';

const HOST = '127.0.0.1';

export interface SentinelNode {
  port: number;
  /** host:port. */
  address: string;
  role: 'data' | 'sentinel';
  readonly alive: boolean;
  /** The node's process id while it runs. */
  readonly pid: number | undefined;
}

export interface TestSentinels {
  /** The monitored set's name, for REDIS_SENTINEL_NAME. */
  name: string;
  /** The two data nodes: [initial primary, initial replica]. */
  data: SentinelNode[];
  sentinels: SentinelNode[];
  /** Sentinel list for REDIS_SENTINELS: host:port, comma separated. */
  addresses: string;
  /** The data node the sentinels name as primary now (all live sentinels agreeing). */
  primary(): Promise<SentinelNode>;
  /** Kills a node (data or sentinel) with SIGKILL; resolves once it has exited. */
  kill(node: SentinelNode): Promise<void>;
  /** Starts a killed node again on its port and folder (a data node the sentinels demoted rejoins as replica). */
  restart(node: SentinelNode): Promise<void>;
  /**
   * Waits until every live sentinel names another data node than `killed` as primary and that node says
   * role:master; resolves with it and how long it took from the call.
   */
  waitForFailover(killed: SentinelNode, timeoutMs?: number): Promise<{ primary: SentinelNode; ms: number }>;
  /** Waits until the sentinels agree on a live primary, know each other and the replica is in sync. */
  waitForHealthy(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface TestSentinelOptions {
  name?: string;
  /** down-after-milliseconds (default 1000). */
  downAfterMs?: number;
  /** failover-timeout (default 5000). */
  failoverTimeoutMs?: number;
}

interface NodeState extends SentinelNode {
  dir: string;
  child: ChildProcess | undefined;
  args: () => string[];
}

export async function startTestSentinels(options: TestSentinelOptions = {}): Promise<TestSentinels> {
  const name = options.name ?? 'pulseboard';
  const downAfter = options.downAfterMs ?? 1000;
  const failoverTimeout = options.failoverTimeoutMs ?? 5000;
  const root = await mkdtemp(path.join(os.tmpdir(), 'pulseboard-sentinel-'));
  const nodes: NodeState[] = [];

  function makeNode(port: number, role: SentinelNode['role'], args: (dir: string) => string[]): NodeState {
    const dir = path.join(root, `${role}-${port}`);
    return {
      port,
      address: `${HOST}:${port}`,
      role,
      dir,
      child: undefined,
      args: () => args(dir),
      get alive() {
        const child = this.child;
        return child !== undefined && child.exitCode === null && child.signalCode === null;
      },
      get pid() {
        return this.alive ? this.child?.pid : undefined;
      },
    };
  }

  async function startNode(node: NodeState): Promise<void> {
    await mkdir(node.dir, { recursive: true });
    const child = spawn('redis-server', node.args(), { stdio: 'ignore' });
    node.child = child;
    track(child);
    await new Promise<void>((resolve, reject) => {
      child.once('error', (error) => reject(new Error(`cannot start redis-server: ${error.message}`)));
      until(
        async () => {
          if (child.exitCode !== null)
            throw new Error(`redis-server on ${node.port} exited (${child.exitCode})`);
          return (await redisCli(node.port, ['ping'], 1000)).trim() === 'PONG' ? true : undefined;
        },
        10_000,
        `redis-server on ${node.port}`,
      ).then(() => resolve(), reject);
    });
  }

  async function kill(node: SentinelNode): Promise<void> {
    const state = node as NodeState;
    const child = state.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    state.child = undefined;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  const data = () => nodes.filter((node) => node.role === 'data');
  const sentinels = () => nodes.filter((node) => node.role === 'sentinel');

  /** The primary each live sentinel names, as ports. */
  async function namedPrimaries(): Promise<number[]> {
    const ports: number[] = [];
    for (const sentinel of sentinels().filter((node) => node.alive)) {
      const reply = (await redisCli(sentinel.port, ['sentinel', 'get-master-addr-by-name', name], 2000))
        .trim()
        .split('\n');
      ports.push(Number(reply[1]));
    }
    return ports;
  }

  async function describe(): Promise<string> {
    const parts: string[] = [];
    for (const node of nodes.filter((candidate) => candidate.alive)) {
      const text =
        node.role === 'sentinel'
          ? await redisCli(node.port, ['sentinel', 'master', name], 2000).catch(String)
          : await redisCli(node.port, ['info', 'replication'], 2000).catch(String);
      parts.push(`--- ${node.role} ${node.port}:\n${text.replace(/\n/g, ' ')}`);
    }
    return parts.join('\n');
  }

  async function agreedPrimary(): Promise<NodeState | undefined> {
    const ports = new Set(await namedPrimaries());
    if (ports.size !== 1) return undefined;
    const port = [...ports][0]!;
    const node = data().find((candidate) => candidate.port === port);
    if (!node?.alive) return undefined;
    if ((await info(port, 'replication')).get('role') !== 'master') return undefined;
    return node;
  }

  async function waitForHealthy(timeoutMs = 30_000): Promise<void> {
    await until(
      async () => {
        const primary = await agreedPrimary();
        if (!primary) return undefined;
        const replication = await info(primary.port, 'replication');
        const replicas = data().filter((node) => node.alive && node !== primary).length;
        if (Number(replication.get('connected_slaves')) !== replicas) return undefined;
        for (let index = 0; index < replicas; index += 1) {
          if (!replication.get(`slave${index}`)?.includes('state=online')) return undefined;
        }
        for (const sentinel of sentinels().filter((node) => node.alive)) {
          const others = await redisCli(sentinel.port, ['sentinel', 'sentinels', name], 2000);
          const known = (others.match(/^name$/gm) ?? []).length;
          if (known !== sentinels().filter((node) => node.alive).length - 1) return undefined;
          const seen = await redisCli(sentinel.port, ['sentinel', 'replicas', name], 2000);
          const lines = seen.split('\n').map((line) => line.trim());
          const healthy = lines.filter((line, at) => line === 'flags' && lines[at + 1] === 'slave').length;
          if (healthy < replicas) return undefined;
        }
        return true;
      },
      timeoutMs,
      'a healthy sentinel set-up',
      describe,
    );
  }

  async function close(): Promise<void> {
    await Promise.all(nodes.map((node) => kill(node)));
    await rm(root, { recursive: true, force: true });
  }

  try {
    const taken = new Set<number>();
    const primaryPort = await distinctPort(taken);
    const replicaPort = await distinctPort(taken);
    const common = (port: number, dir: string) => [
      ...['--port', String(port), '--bind', HOST, '--dir', dir, '--save', '', '--appendonly', 'no'],
      ...['--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'],
    ];
    // A restarted node asks the sentinels nothing: it comes back as a primary until a sentinel converts it
    // (that is the real behaviour, and why the sentinels' view decides). The replica starts as a replica.
    nodes.push(makeNode(primaryPort, 'data', (dir) => common(primaryPort, dir)));
    nodes.push(
      makeNode(replicaPort, 'data', (dir) => [
        ...common(replicaPort, dir),
        '--replicaof',
        HOST,
        String(primaryPort),
      ]),
    );
    for (let index = 0; index < 3; index += 1) {
      const port = await distinctPort(taken);
      nodes.push(makeNode(port, 'sentinel', (dir) => [path.join(dir, 'sentinel.conf'), '--sentinel']));
    }
    await Promise.all(data().map((node) => startNode(node)));
    for (const sentinel of sentinels()) {
      await mkdir(sentinel.dir, { recursive: true });
      await writeFile(
        path.join(sentinel.dir, 'sentinel.conf'),
        [
          `port ${sentinel.port}`,
          `bind ${HOST}`,
          `dir ${sentinel.dir}`,
          `sentinel monitor ${name} ${HOST} ${primaryPort} 2`,
          `sentinel down-after-milliseconds ${name} ${downAfter}`,
          `sentinel failover-timeout ${name} ${failoverTimeout}`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
    }
    await Promise.all(sentinels().map((node) => startNode(node)));
    await waitForHealthy();
  } catch (error) {
    const detail = await describe().catch(() => '');
    await close();
    throw new Error(`${String(error)}\n${detail}`);
  }

  return {
    name,
    data: data(),
    sentinels: sentinels(),
    addresses: sentinels()
      .map((node) => node.address)
      .join(','),
    async primary() {
      const node = await agreedPrimary();
      if (!node) throw new Error(`the sentinels do not agree on a live primary:\n${await describe()}`);
      return node;
    },
    kill,
    async restart(node) {
      if (node.alive) return;
      await startNode(node as NodeState);
    },
    async waitForFailover(killed, timeoutMs = 30_000) {
      const started = performance.now();
      const primary = await until(
        async () => {
          const node = await agreedPrimary();
          return node && node.port !== killed.port ? (node as SentinelNode) : undefined;
        },
        timeoutMs,
        `the sentinels to promote a replica in place of ${killed.address}`,
        describe,
      );
      return { primary, ms: performance.now() - started };
    },
    waitForHealthy,
    close,
  };
}
