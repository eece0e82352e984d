// The Redis topology chosen by configuration (docs/operations.md, "Redis topologies"): one server
// (REDIS_URL), a primary behind Sentinel (REDIS_SENTINELS + REDIS_SENTINEL_NAME) or a Redis Cluster
// (REDIS_CLUSTER_NODES), with node-redis' own client, sentinel client and cluster client. The rest of the
// worker sees one type, RedisClient, with the ordinary command methods (get, hGetAll, xRange, eval,
// multi…); on Sentinel and Cluster it is a thin view over node-redis' client that keeps `sendCommand(args)`
// (routed by the command's first key on Cluster) and adds `sendCommandFor(key, args)`.
import { createClient, createCluster, createSentinel } from 'redis';
import { firstKeyOf } from '../../shared/script-runner.ts';
import type { Config } from '../config.ts';

export { firstKeyOf };

export type TopologyKind = 'standalone' | 'sentinel' | 'cluster';

export type RedisTopologyConfig = Pick<
  Config,
  | 'REDIS_URL'
  | 'REDIS_SENTINELS'
  | 'REDIS_SENTINEL_NAME'
  | 'REDIS_CLUSTER_NODES'
  | 'REDIS_USERNAME'
  | 'REDIS_PASSWORD'
  | 'REDIS_SENTINEL_PASSWORD'
  | 'REDIS_TLS'
>;

export function topologyOf(config: RedisTopologyConfig): TopologyKind {
  if (config.REDIS_CLUSTER_NODES) return 'cluster';
  if (config.REDIS_SENTINELS) return 'sentinel';
  return 'standalone';
}

/** Where the configuration points, fit for a message (no password). */
export function describeTopology(config: RedisTopologyConfig): string {
  if (config.REDIS_CLUSTER_NODES) return `the Redis Cluster at ${config.REDIS_CLUSTER_NODES.join(', ')}`;
  if (config.REDIS_SENTINELS) {
    return `the Redis primary ${config.REDIS_SENTINEL_NAME ?? ''} of the sentinels at ${config.REDIS_SENTINELS.join(', ')}`;
  }
  return `Redis at ${redactUrl(config.REDIS_URL)}`;
}

/** A Redis URL fit for a message: its password replaced by `***` (users/ACL names are kept). */
export function redactUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return 'REDIS_URL';
  }
}

/** Only its return type is used: node-redis' client as createClient types it. */
function _standaloneShape(url: string) {
  return createClient({ url });
}

/** The type every part of the worker uses for a Redis connection (node-redis' client). */
export type RedisClient = ReturnType<typeof _standaloneShape> & {
  /** Sends `args` to the node serving `key`'s slot (Cluster); the one node otherwise. */
  sendCommandFor?(key: string, args: string[]): Promise<unknown>;
};

export interface ConnectionOptions {
  /** CLIENT SETNAME, e.g. `pulseboard:commands`. */
  name?: string;
  /** Reconnect with this strategy; false: fail at once (the CLI). */
  reconnectStrategy: false | ((retries: number) => number);
  connectTimeout: number;
}

type AnyFunction = (...args: unknown[]) => unknown;

interface ClusterLike {
  sendCommand(
    key: string | undefined,
    readonly: boolean,
    args: string[],
    options?: unknown,
  ): Promise<unknown>;
}
interface SentinelLike {
  sendCommand(readonly: boolean, args: string[], options?: unknown): Promise<unknown>;
}

/**
 * A view over a node-redis cluster or sentinel client shaped like the standalone client: `sendCommand`
 * takes only the arguments (routed by their first key on Cluster), `duplicate` and `withCommandOptions`
 * keep the view, `quit` closes.
 */
function asClient(target: object, kind: 'cluster' | 'sentinel'): RedisClient {
  const send = (key: string | undefined, args: string[], options?: unknown): Promise<unknown> =>
    kind === 'cluster'
      ? (target as ClusterLike).sendCommand(key, false, args, options)
      : (target as SentinelLike).sendCommand(false, args, options);
  const view: RedisClient = new Proxy(target, {
    get(object, property) {
      switch (property) {
        case 'topology':
          return kind;
        case 'raw':
          return object;
        case 'sendCommand':
          return (args: string[], options?: unknown) => send(firstKeyOf(args), args, options);
        case 'sendCommandFor':
          return (key: string, args: string[]) => send(key, args);
        case 'duplicate':
        case 'withCommandOptions':
          return (...args: unknown[]) =>
            asClient(
              (Reflect.get(object, property, object) as AnyFunction).apply(object, args) as object,
              kind,
            );
        case 'connect':
          return async () => {
            await (Reflect.get(object, 'connect', object) as AnyFunction).call(object);
            return view;
          };
        case 'quit':
          return async () => {
            await (Reflect.get(object, 'close', object) as AnyFunction).call(object);
          };
        case 'destroy':
          return () => {
            const destroyed = (Reflect.get(object, 'destroy', object) as AnyFunction).call(object);
            if (destroyed instanceof Promise) destroyed.catch(() => undefined);
          };
        default: {
          const value: unknown = Reflect.get(object, property, object);
          return typeof value === 'function' ? (value as AnyFunction).bind(object) : value;
        }
      }
    },
  }) as RedisClient;
  return view;
}

/** Which topology a connection is on: `standalone` for a plain node-redis client. */
export function topologyOfClient(client: RedisClient): TopologyKind {
  return (client as { topology?: TopologyKind }).topology ?? 'standalone';
}

/** The node-redis cluster behind a connection on Cluster (slots, masters, node clients), else undefined. */
export function clusterOf(client: RedisClient): ReturnType<typeof createCluster> | undefined {
  if (topologyOfClient(client) !== 'cluster') return undefined;
  return (client as unknown as { raw: ReturnType<typeof createCluster> }).raw;
}

function hostPortOf(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(address.slice(colon + 1)) };
}

/** One Redis connection of the configured topology (not connected yet). */
export function createConnection(config: RedisTopologyConfig, options: ConnectionOptions): RedisClient {
  const auth = {
    ...(config.REDIS_USERNAME === undefined ? {} : { username: config.REDIS_USERNAME }),
    ...(config.REDIS_PASSWORD === undefined ? {} : { password: config.REDIS_PASSWORD }),
  };
  const socket = {
    reconnectStrategy: options.reconnectStrategy,
    connectTimeout: options.connectTimeout,
    ...(config.REDIS_TLS ? { tls: true as const } : {}),
  };
  const name = options.name === undefined ? {} : { name: options.name };
  if (config.REDIS_CLUSTER_NODES) {
    {
      const cluster = createCluster({
        rootNodes: config.REDIS_CLUSTER_NODES.map((address) => ({ socket: hostPortOf(address) })),
        defaults: { ...auth, ...name, socket },
        // Reads go to primaries: a replica may not have an event its primary acknowledged yet.
        useReplicas: false,
      });
      return asClient(cluster, 'cluster');
    }
  }
  if (config.REDIS_SENTINELS) {
    {
      const sentinel = createSentinel({
        name: config.REDIS_SENTINEL_NAME ?? '',
        sentinelRootNodes: config.REDIS_SENTINELS.map(hostPortOf),
        nodeClientOptions: { ...auth, socket },
        sentinelClientOptions: {
          ...(config.REDIS_SENTINEL_PASSWORD === undefined
            ? {}
            : { password: config.REDIS_SENTINEL_PASSWORD }),
          socket,
        },
        masterPoolSize: 1,
      });
      return asClient(sentinel, 'sentinel');
    }
  }
  return createClient({
    url: config.REDIS_URL,
    ...(config.REDIS_URL.includes('@') ? {} : auth),
    ...name,
    socket,
  }) as RedisClient;
}
