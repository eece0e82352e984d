// The Redis topology chosen by configuration (docs/operations.md, "Redis topologies"): one server
// (REDIS_URL), a primary behind Sentinel (REDIS_SENTINELS + REDIS_SENTINEL_NAME) or a Redis Cluster
// (REDIS_CLUSTER_NODES), with node-redis' own client, sentinel client and cluster client. The rest of the
// worker sees one type, RedisClient, with the ordinary command methods (get, hGetAll, xRange, eval,
// multi…); on Sentinel and Cluster it is a thin view over node-redis' client that keeps `sendCommand(args)`
// (routed by the command's first key on Cluster) and adds `sendCommandFor(key, args)`.
import calculateSlotImport from '@redis/client/dist/lib/utils/calculate-slot.js';
import { createClient, createCluster, createSentinel } from 'redis';
import { firstKeyOf, sendToNodeOf } from '../../shared/script-runner.ts';
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
  getNodeClientForKey(
    key: string,
    isReadonly?: boolean,
  ): Promise<{ sendCommand(args: string[], options?: unknown): Promise<unknown> }>;
  masters: ReadonlyArray<{ client?: { isReady: boolean } }>;
  nodeClient(node: object): Promise<{ sendCommand(args: string[], options?: unknown): Promise<unknown> }>;
}

/**
 * Sends a command any one node answers alike (PING, CLUSTER SHARDS/KEYSLOT) to a primary whose connection
 * is ready. node-redis would send PING to every primary and fail it when one is down, and CLUSTER to a
 * random primary, the failed one too: then one shard's failover would fail every worker's health check
 * and the balancer would take every host out (docs/scaling.md, "What a failover costs").
 */
function sendToAnyReadyNode(cluster: ClusterLike, args: string[], options?: unknown): Promise<unknown> {
  const ready = cluster.masters.filter((node) => node.client?.isReady);
  const nodes = ready.length > 0 ? ready : cluster.masters;
  const node = nodes[Math.floor(Math.random() * nodes.length)];
  if (node === undefined) return cluster.sendCommand(undefined, false, args, options);
  return cluster.nodeClient(node).then((client) => client.sendCommand(args, options));
}

/** Keyless commands whose answer does not depend on the node (on Cluster: any ready primary). */
const ANY_NODE_COMMANDS = new Set(['PING', 'CLUSTER']);
interface SentinelLike {
  sendCommand(readonly: boolean, args: string[], options?: unknown): Promise<unknown>;
}

/**
 * A view over a node-redis cluster or sentinel client shaped like the standalone client: `sendCommand`
 * takes only the arguments (routed by their first key on Cluster), `duplicate` and `withCommandOptions`
 * keep the view, `quit` closes.
 */
function asClient(target: object, kind: 'cluster' | 'sentinel'): RedisClient {
  const send = (key: string | undefined, args: string[], options?: unknown): Promise<unknown> => {
    if (kind !== 'cluster') return (target as SentinelLike).sendCommand(false, args, options);
    const cluster = target as ClusterLike;
    if (key === undefined && ANY_NODE_COMMANDS.has((args[0] ?? '').toUpperCase())) {
      return sendToAnyReadyNode(cluster, args, {
        ...(Reflect.get(target, '_commandOptions', target) as object | undefined),
        ...(options as object | undefined),
      });
    }
    return cluster.sendCommand(key, false, args, options);
  };
  const view: RedisClient = new Proxy(target, {
    get(object, property) {
      switch (property) {
        case 'topology':
          return kind;
        case 'raw':
          return object;
        case 'sendCommand':
          return (args: string[], options?: unknown) => send(firstKeyOf(args), args, options);
        case 'ping':
          if (kind !== 'cluster') break;
          return async () => String(await send(undefined, ['PING']));
        case 'sendCommandFor':
          // A keyless command for a key's node (WAIT, INFO, SCRIPT LOAD) on that primary's own connection,
          // with this view's command options (the request deadline): shared/script-runner.ts sendToNodeOf.
          return (key: string, args: string[]) =>
            kind === 'cluster'
              ? sendToNodeOf(object as ClusterLike, key, args, Reflect.get(object, '_commandOptions', object))
              : send(key, args);
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
        default:
          break;
      }
      const value: unknown = Reflect.get(object, property, object);
      return typeof value === 'function' ? (value as AnyFunction).bind(object) : value;
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

/**
 * On Cluster, the `host:port` of the primary serving `key`'s slot in the client's current slot map (as
 * node-redis' node events name a node); undefined elsewhere or while the map has no such slot.
 */
export function primaryAddressOf(client: RedisClient, key: string): string | undefined {
  const cluster = clusterOf(client);
  if (cluster === undefined) return undefined;
  return cluster.slots[calculateSlot(key)]?.master.address;
}

interface PubSubNodeLike {
  address: string;
  client: {
    getPubSubListeners(type: string): unknown;
    on(event: string, listener: () => void): unknown;
    extendPubSubListeners(type: string, listeners: unknown): Promise<unknown>;
    destroy(): void;
  };
  connectPromise?: Promise<unknown>;
}

interface ClusterSlotsLike {
  masters: unknown[];
  replicas: unknown[];
  slots: Array<{ master: { address: string } } | undefined>;
  pubSubNode: PubSubNodeLike | undefined;
  getPubSubClient(): Promise<PubSubNodeLike['client']>;
  rediscover(...args: unknown[]): Promise<unknown>;
}

/**
 * On Cluster, makes the connection's classic SUBSCRIBE go to the primary serving `key`'s slot, and follow
 * it after a failover or slot move (docs/events.md, "Raw PUBLISH: exactly once"): every node delivers a
 * classic channel in its own order, so workers agree on positions only when they all listen on the same
 * node. node-redis picks a random node (primaries and replicas) for classic pub/sub; here its choice is
 * narrowed to that primary, and after each slot-map refresh a subscription left on another node is moved
 * (listeners kept), then 'reconnecting' and 'ready' are emitted so raw ingest re-establishes its position.
 * A no-op on other topologies.
 */
export function pinClassicPubSub(client: RedisClient, key: string): void {
  const cluster = clusterOf(client);
  if (cluster === undefined) return;
  const slots = Reflect.get(cluster, '_slots', cluster) as ClusterSlotsLike;
  const slot = calculateSlot(key);
  const pick = slots.getPubSubClient.bind(slots);
  // The cluster client emits no 'reconnecting'/'ready' of its own: those of the pub/sub connection are
  // passed on, so raw ingest restarts its count after messages may have been missed.
  const watched = new WeakSet<object>();
  const watch = (client: PubSubNodeLike['client']) => {
    if (watched.has(client)) return client;
    watched.add(client);
    client.on('reconnecting', () => cluster.emit('reconnecting'));
    client.on('ready', () => cluster.emit('ready'));
    return client;
  };
  slots.getPubSubClient = () => {
    const master = slots.slots[slot]?.master;
    if (slots.pubSubNode !== undefined || master === undefined) return pick();
    // node-redis draws the node from masters + replicas when it opens the connection (synchronously).
    const { masters, replicas } = slots;
    slots.masters = [master];
    slots.replicas = [];
    try {
      return pick().then(watch);
    } finally {
      slots.masters = masters;
      slots.replicas = replicas;
    }
  };
  const rediscover = slots.rediscover.bind(slots);
  let moving: Promise<void> | undefined;
  const follow = async (): Promise<void> => {
    const current = slots.pubSubNode;
    const master = slots.slots[slot]?.master;
    if (current === undefined || master === undefined) return;
    // A connection node-redis just opened gets its listeners once connected (to a live node: soon).
    if (current.connectPromise !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      const connected = await Promise.race([
        current.connectPromise.then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 5000))),
      ]).catch(() => false);
      clearTimeout(timer);
      if (!connected) return;
    }
    if (slots.pubSubNode !== current) return;
    if (current.address === master.address) {
      // node-redis re-opens the pub/sub connection itself when its node left the slot map (a killed
      // primary), on a node of its choosing; when that is the right one, nothing is moved, but the new
      // connection's 'ready' was never passed on: raw ingest must still learn it can count again.
      if (!watched.has(current.client)) {
        watch(current.client);
        cluster.emit('ready');
      }
      return;
    }
    const channels = current.client.getPubSubListeners('CHANNELS');
    const patterns = current.client.getPubSubListeners('PATTERNS');
    slots.pubSubNode = undefined;
    current.client.destroy();
    cluster.emit('reconnecting');
    const moved = await slots.getPubSubClient();
    await Promise.all([
      moved.extendPubSubListeners('CHANNELS', channels),
      moved.extendPubSubListeners('PATTERNS', patterns),
    ]);
    cluster.emit('ready');
  };
  slots.rediscover = async (...args: unknown[]) => {
    try {
      return await rediscover(...args);
    } finally {
      moving ??= follow()
        .catch(() => undefined)
        .finally(() => (moving = undefined));
    }
  };
}

function hostPortOf(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(address.slice(colon + 1)) };
}

type SlotOf = (key: string) => number;
const slotImport: unknown = calculateSlotImport;
/** node-redis' slot function: Node's ESM loader gives its module object, a CommonJS transform the function. */
const calculateSlot: SlotOf =
  typeof slotImport === 'function' ? (slotImport as SlotOf) : (slotImport as { default: SlotOf }).default;

/** How long a Cluster node may be reconnecting before the slot map is asked for again. */
const TOPOLOGY_REFRESH_AFTER_MS = 1000;

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
        // Ask the other nodes for the slot map after a node has been reconnecting for 1 s (node-redis'
        // default: 5 s): a failed primary's slots are served again soon after its replica takes over
        // (docs/scaling.md, "What a failover costs"). Refreshes while the failover runs cost one CLUSTER
        // SLOTS per second and connection.
        topologyRefreshOnReconnectionAttemptStrategy: TOPOLOGY_REFRESH_AFTER_MS,
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
