// A real Redis Cluster for the tests (docs/scaling.md, "Redis Cluster"): 3 primaries + 3 replicas, each a
// redis-server on a free loopback port with its own folder under one temp dir, joined with
// `redis-cli --cluster create … --cluster-replicas 1`. A short cluster-node-timeout makes a failover take
// ~2-3 s; `cluster-require-full-coverage no` keeps the other shards serving while one shard is down, as
// production should. Everything it starts is killed (and the folder removed) by close(), or at process exit.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, track } from './redis-server.ts';

const run = promisify(execFile);
const HOST = '127.0.0.1';

/** CRC16/XMODEM, the checksum of Redis Cluster's key -> slot mapping. */
function crc16(data: Buffer): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit += 1) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

/** The hash slot of a key, hash tags honoured (the same answer as CLUSTER KEYSLOT). */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(key)) % 16384;
}

/** Runs redis-cli against one node; resolves with its stdout. */
export async function redisCli(port: number, args: string[], timeoutMs = 30_000): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', HOST, '-p', String(port), ...args], {
    timeout: timeoutMs,
    maxBuffer: 16 << 20,
  });
  return stdout;
}

/** `INFO <section>` as a map. */
export async function info(port: number, section: string): Promise<Map<string, string>> {
  const text = await redisCli(port, ['info', section], 2000);
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

export interface ClusterNode {
  port: number;
  /** host:port, as REDIS_CLUSTER_NODES lists seeds. */
  address: string;
  /** The node's cluster id (stable across restarts: its nodes.conf stays in its folder). */
  id: string;
  /** Whether this harness's process for the node runs. */
  readonly alive: boolean;
  /** The node's process id while it runs (for CPU figures from /proc). */
  readonly pid: number | undefined;
}

/** One line of CLUSTER NODES, as seen by some live node. */
export interface NodeView {
  id: string;
  port: number;
  flags: string[];
  /** Id of its primary, for a replica. */
  primaryId: string | undefined;
  /** [first, last] slot ranges (migrating/importing markers left out). */
  ranges: Array<[number, number]>;
}

export interface TestCluster {
  nodes: ClusterNode[];
  /** Seed list for REDIS_CLUSTER_NODES: every node, host:port, comma separated. */
  seeds: string;
  /** CLUSTER NODES parsed, from the first live node that answers. */
  view(): Promise<NodeView[]>;
  /** The node serving `slot` as primary right now. */
  primaryOf(slot: number): Promise<ClusterNode>;
  /** The live primaries, in slot order, with their slot ranges. */
  primaries(): Promise<Array<{ node: ClusterNode; ranges: Array<[number, number]> }>>;
  /** Kills a node with SIGKILL, as a crash would; resolves once it has exited. */
  kill(node: ClusterNode): Promise<void>;
  /** Starts a killed node again on its port and folder (it rejoins, as a replica if it was failed over). */
  restart(node: ClusterNode): Promise<void>;
  /**
   * Waits until the slots `killed` served are served by another live primary and every live node says
   * cluster_state:ok; resolves with the new primary and how long it took from the call.
   */
  waitForFailover(killed: ClusterNode, timeoutMs?: number): Promise<{ primary: ClusterNode; ms: number }>;
  /** Waits for cluster_state:ok on every live node, all 16384 slots served, every replica in sync. */
  waitForHealthy(timeoutMs?: number): Promise<void>;
  /**
   * Moves `count` slots from `from` to `to` with `redis-cli --cluster reshard` (CLUSTER SETSLOT + MIGRATE
   * key by key). redis-cli takes a source's slots in ascending order, so the first `count` slots of `from`.
   */
  reshard(from: ClusterNode, to: ClusterNode, count: number): Promise<void>;
  /** Stops every node and removes the folder. */
  close(): Promise<void>;
}

export interface TestClusterOptions {
  /** Number of primaries (default 3); each gets one replica. */
  primaries?: number;
  /** cluster-node-timeout in ms (default 1000). */
  nodeTimeoutMs?: number;
}

interface NodeState extends ClusterNode {
  dir: string;
  busPort: number;
  child: ChildProcess | undefined;
}

function parseNodes(text: string): NodeView[] {
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id, address, flags, primary, , , , , ...slots] = line.trim().split(' ');
      const port = Number(address!.split('@')[0]!.split(':').at(-1));
      const ranges: Array<[number, number]> = [];
      for (const slot of slots) {
        if (slot.startsWith('[')) continue;
        const [first, last] = slot.split('-').map(Number);
        ranges.push([first!, last ?? first!]);
      }
      return {
        id: id!,
        port,
        flags: flags!.split(','),
        primaryId: primary === '-' ? undefined : primary,
        ranges,
      };
    });
}

/** Polls `check` every 100 ms until it returns a value; fails after `timeoutMs` with `describe()`'s detail. */
export async function until<T>(
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
  describe: () => Promise<string> = async () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = await describe().catch(() => '');
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what} ${String(lastError ?? '')}\n${detail}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * A free loopback port not in `taken` (then added): the kernel may hand out a port just released, so
 * several free ports asked for in a row can repeat.
 */
export async function distinctPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (taken.has(port)) continue;
    taken.add(port);
    return port;
  }
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  await until(
    async () => {
      if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited (${child.exitCode})`);
      return (await redisCli(port, ['ping'], 1000)).trim() === 'PONG' ? true : undefined;
    },
    10_000,
    `redis-server on ${port}`,
  );
}

export async function startTestCluster(options: TestClusterOptions = {}): Promise<TestCluster> {
  const primaryCount = options.primaries ?? 3;
  const nodeTimeout = options.nodeTimeoutMs ?? 1000;
  const root = await mkdtemp(path.join(os.tmpdir(), 'pulseboard-cluster-'));
  const nodes: NodeState[] = [];
  const taken = new Set<number>();

  async function startNode(node: NodeState): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        ...[
          '--port',
          String(node.port),
          '--bind',
          HOST,
          '--dir',
          node.dir,
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        ...['--cluster-enabled', 'yes', '--cluster-port', String(node.busPort)],
        ...['--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(nodeTimeout)],
        // Other shards keep serving while one is failing over (docs/scaling.md, "What a failover costs").
        ...['--cluster-require-full-coverage', 'no', '--cluster-replica-validity-factor', '0'],
        ...['--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'],
      ],
      { stdio: 'ignore' },
    );
    node.child = child;
    track(child);
    await new Promise<void>((resolve, reject) => {
      child.once('error', (error) => reject(new Error(`cannot start redis-server: ${error.message}`)));
      waitForPort(node.port, child).then(resolve, reject);
    });
  }

  async function kill(node: ClusterNode): Promise<void> {
    const state = node as NodeState;
    const child = state.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    state.child = undefined;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  const live = () => nodes.filter((node) => node.alive);

  async function view(): Promise<NodeView[]> {
    let lastError: unknown;
    for (const node of live()) {
      try {
        return parseNodes(await redisCli(node.port, ['cluster', 'nodes'], 2000));
      } catch (error) {
        lastError = error;
      }
    }
    throw new Error(`no live node answered CLUSTER NODES: ${String(lastError)}`);
  }

  const byPort = (port: number): NodeState => {
    const node = nodes.find((candidate) => candidate.port === port);
    if (!node) throw new Error(`no node on port ${port}`);
    return node;
  };

  async function describe(): Promise<string> {
    const parts: string[] = [];
    for (const node of live()) {
      parts.push(`--- ${node.port}:\n${await redisCli(node.port, ['cluster', 'nodes'], 2000).catch(String)}`);
    }
    return parts.join('\n');
  }

  async function healthyNow(): Promise<boolean> {
    const views = await view();
    let covered = 0;
    for (const entry of views) {
      if (!entry.flags.includes('master') || entry.flags.some((flag) => flag.startsWith('fail'))) continue;
      if (!byPort(entry.port).alive) return false;
      for (const [first, last] of entry.ranges) covered += last - first + 1;
    }
    if (covered !== 16384) return false;
    for (const node of live()) {
      if ((await info(node.port, 'cluster')).get('cluster_enabled') !== '1') return false;
      const state = (await redisCli(node.port, ['cluster', 'info'], 2000)).match(/cluster_state:(\w+)/)?.[1];
      if (state !== 'ok') return false;
      const replication = await info(node.port, 'replication');
      if (replication.get('role') === 'slave') {
        if (replication.get('master_link_status') !== 'up') return false;
        if (replication.get('master_sync_in_progress') !== '0') return false;
      }
    }
    // Every live node agrees on who serves what (a node that just rejoined may not have caught up).
    const seen = new Set<string>();
    for (const node of live()) {
      const own = parseNodes(await redisCli(node.port, ['cluster', 'nodes'], 2000));
      seen.add(
        own
          .filter((entry) => entry.flags.includes('master') && entry.ranges.length > 0)
          .map((entry) => `${entry.id}:${JSON.stringify(entry.ranges)}`)
          .sort()
          .join('|'),
      );
    }
    return seen.size === 1;
  }

  async function waitForHealthy(timeoutMs = 30_000): Promise<void> {
    await until(
      async () => ((await healthyNow()) ? true : undefined),
      timeoutMs,
      'a healthy cluster',
      describe,
    );
  }

  async function primaries() {
    const views = await view();
    return views
      .filter(
        (entry) =>
          entry.flags.includes('master') &&
          !entry.flags.some((flag) => flag.startsWith('fail')) &&
          entry.ranges.length > 0,
      )
      .sort((a, b) => a.ranges[0]![0] - b.ranges[0]![0])
      .map((entry) => ({ node: byPort(entry.port) as ClusterNode, ranges: entry.ranges }));
  }

  async function primaryOf(slot: number): Promise<ClusterNode> {
    for (const { node, ranges } of await primaries()) {
      if (ranges.some(([first, last]) => slot >= first && slot <= last)) return node;
    }
    throw new Error(`no live primary serves slot ${slot}`);
  }

  async function close(): Promise<void> {
    await Promise.all(nodes.map((node) => kill(node)));
    await rm(root, { recursive: true, force: true });
  }

  try {
    for (let index = 0; index < primaryCount * 2; index += 1) {
      const port = await distinctPort(taken);
      const busPort = await distinctPort(taken);
      const dir = path.join(root, String(port));
      await mkdir(dir);
      const node: NodeState = {
        port,
        busPort,
        address: `${HOST}:${port}`,
        id: '',
        dir,
        child: undefined,
        get alive() {
          const child = this.child;
          return child !== undefined && child.exitCode === null && child.signalCode === null;
        },
        get pid() {
          return this.alive ? this.child?.pid : undefined;
        },
      };
      nodes.push(node);
    }
    await Promise.all(nodes.map((node) => startNode(node)));
    await redisCli(
      nodes[0]!.port,
      [
        '--cluster',
        'create',
        ...nodes.map((node) => node.address),
        ...['--cluster-replicas', '1', '--cluster-yes'],
      ],
      60_000,
    );
    for (const node of nodes) node.id = (await redisCli(node.port, ['cluster', 'myid'])).trim();
    await waitForHealthy();
  } catch (error) {
    const detail = await describe().catch(() => '');
    await close();
    throw new Error(`${String(error)}\n${detail}`);
  }

  return {
    nodes,
    seeds: nodes.map((node) => node.address).join(','),
    view,
    primaryOf,
    primaries,
    kill,
    async restart(node) {
      if (node.alive) return;
      await startNode(node as NodeState);
    },
    async waitForFailover(killed, timeoutMs = 20_000) {
      const started = performance.now();
      const before = (await view()).find((entry) => entry.id === killed.id);
      const slot = before?.ranges[0]?.[0];
      const primary = await until(
        async () => {
          const entries = await view();
          const failed = entries.find((entry) => entry.id === killed.id);
          if (!failed?.flags.includes('fail')) return undefined;
          const serving = entries.find(
            (entry) =>
              entry.id !== killed.id &&
              entry.flags.includes('master') &&
              !entry.flags.some((flag) => flag.startsWith('fail')) &&
              (slot === undefined || entry.ranges.some(([first, last]) => slot >= first && slot <= last)),
          );
          if (!serving || !byPort(serving.port).alive) return undefined;
          for (const node of live()) {
            const state = (await redisCli(node.port, ['cluster', 'info'], 2000)).match(
              /cluster_state:(\w+)/,
            )?.[1];
            if (state !== 'ok') return undefined;
          }
          return byPort(serving.port) as ClusterNode;
        },
        timeoutMs,
        `a replica to take over from ${killed.address}`,
        describe,
      );
      return { primary, ms: performance.now() - started };
    },
    waitForHealthy,
    async reshard(from, to, count) {
      await redisCli(
        to.port,
        [
          ...['--cluster', 'reshard', to.address],
          ...['--cluster-from', from.id, '--cluster-to', to.id, '--cluster-slots', String(count)],
          ...['--cluster-yes', '--cluster-pipeline', '100'],
        ],
        120_000,
      );
    },
    close,
  };
}
