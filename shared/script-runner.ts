// Running the sequencing scripts by EVALSHA (docs/design.md, "Redis keys"), on a standalone Redis, behind
// Sentinel or on Redis Cluster. A call's first key routes it to the shard of its slot; SCRIPT LOAD goes
// to the same shard, since each node has its own script cache.

/** The one Redis capability the publisher needs; a node-redis client satisfies it. */
export interface RedisCommandSender {
  sendCommand(args: string[]): Promise<unknown>;
  /**
   * Sends `args` to the node serving `key`'s slot (Redis Cluster), e.g. WAIT after a write there. Without
   * it, `sendCommand` is used: one node serves every key.
   */
  sendCommandFor?(key: string, args: string[]): Promise<unknown>;
}

interface ClusterClient {
  sendCommand(
    firstKey: string | undefined,
    isReadonly: boolean | undefined,
    args: string[],
    options?: unknown,
  ): Promise<unknown>;
  /** node-redis' connection to the primary serving `key`'s slot. */
  getNodeClientForKey?(
    key: string,
    isReadonly?: boolean,
  ): Promise<{ sendCommand(args: string[], options?: unknown): Promise<unknown> }>;
}

/**
 * Sends `args` to the primary serving `key`'s slot on a node-redis cluster client. A keyless command named
 * for a key (WAIT after a write there, INFO replication, SCRIPT LOAD) goes straight to that primary's
 * connection: through the cluster client's command policies WAIT would go to every primary and answer
 * their minimum, so one failed primary would stall every shard's acknowledgements (docs/scaling.md, "What
 * a failover costs"). Keyed commands keep the cluster client's routing (MOVED/ASK).
 */
export async function sendToNodeOf(
  cluster: ClusterClient,
  key: string,
  args: string[],
  options?: unknown,
): Promise<unknown> {
  if (firstKeyOf(args) !== undefined || !cluster.getNodeClientForKey) {
    return cluster.sendCommand(key, false, args, options);
  }
  const node = await cluster.getNodeClientForKey(key, false);
  return node.sendCommand(args, options);
}

/**
 * A RedisCommandSender over a node-redis cluster client (`createCluster`), routing each command by its
 * first key: `createPublisher(clusterSender(cluster))` (docs/events.md, "Atomic per board").
 */
export function clusterSender(cluster: ClusterClient): Required<RedisCommandSender> {
  return {
    sendCommand: (args) => cluster.sendCommand(firstKeyOf(args), false, args),
    sendCommandFor: (key, args) => sendToNodeOf(cluster, key, args),
  };
}

const NO_KEY_COMMANDS = new Set([
  'TIME',
  'PING',
  'INFO',
  'SCRIPT',
  'WAIT',
  'CLUSTER',
  'CLIENT',
  'PUBLISH',
  'ROLE',
  'DBSIZE',
  'CONFIG',
  'COMMAND',
  'HELLO',
  'QUIT',
]);

/** The key that routes a raw command on Redis Cluster (undefined: any node). */
export function firstKeyOf(args: readonly string[]): string | undefined {
  const name = (args[0] ?? '').toUpperCase();
  if (NO_KEY_COMMANDS.has(name)) return undefined;
  if (name.startsWith('EVAL') || name.startsWith('FCALL')) return Number(args[2]) > 0 ? args[3] : undefined;
  if (name === 'XINFO' || name === 'XGROUP' || name === 'OBJECT' || name === 'MEMORY') return args[2];
  if (name === 'XREAD' || name === 'XREADGROUP') {
    const streams = args.findIndex((arg) => arg.toUpperCase() === 'STREAMS');
    return streams >= 0 ? args[streams + 1] : undefined;
  }
  return args[1];
}

/** Sends `args` to the node of `key`: the sender's own routing when it has one. */
export function sendFor(client: RedisCommandSender, key: string, args: string[]): Promise<unknown> {
  return client.sendCommandFor ? client.sendCommandFor(key, args) : client.sendCommand(args);
}

/** Runs a script with its arguments: the KEYS count, the keys, then ARGV (as EVALSHA takes them). */
export type ScriptRunner = (args: readonly string[]) => Promise<unknown>;

/** The arguments of a script call: the KEYS count, `keys`, then `argv`. */
export function scriptArgs(keys: readonly string[], argv: readonly string[]): string[] {
  return [String(keys.length), ...keys, ...argv];
}

/**
 * Runs a Lua script by EVALSHA, loading it on first use and again after a Redis restart, a failover to a
 * node that never saw it, or SCRIPT FLUSH (NOSCRIPT), so the script text crosses the wire once per node
 * and connection life, not per call. On Redis Cluster the call's first key routes it (and the load).
 */
export function createScriptRunner(client: RedisCommandSender, script: string): ScriptRunner {
  let sha: Promise<string> | undefined;
  const load = (key: string | undefined): Promise<string> => {
    const command = ['SCRIPT', 'LOAD', script];
    const loading = (key === undefined ? client.sendCommand(command) : sendFor(client, key, command)).then(
      (loaded) => {
        if (typeof loaded !== 'string') throw new Error('SCRIPT LOAD did not return a sha');
        return loaded;
      },
    );
    loading.catch(() => {
      if (sha === loading) sha = undefined;
    });
    return loading;
  };
  return async function run(args): Promise<unknown> {
    const key = Number(args[0]) > 0 ? args[1] : undefined;
    const call = async () => client.sendCommand(['EVALSHA', await (sha ??= load(key)), ...args]);
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      sha = load(key);
      return call();
    }
  };
}
