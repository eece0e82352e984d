// A worker's Redis connections (docs/design.md, "Processes"), on the configured topology
// (server/redis/topology.ts): commands; the classic subscriber (control, boards, metrics, raw ingest);
// the shard subscriber (each board's channel, SSUBSCRIBE); and the acknowledged-write connection, whose
// writes are followed by WAIT (a blocked WAIT holds only it, not the worker's other commands).
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { createRedisClient, type RedisClient } from '../redis.ts';
import { pinClassicPubSub } from './topology.ts';

export interface WorkerConnections {
  redis: RedisClient;
  subscriber: RedisClient;
  shardSubscriber: RedisClient;
  acked: RedisClient;
  connect(): Promise<void>;
  /** Drops every connection at once: fails whatever node-redis still queues while Redis is away. */
  drop(): void;
  /** Whether every connection is ready (else a stop drops instead of quitting politely). */
  ready(): boolean;
  /** QUIT on every open connection. */
  quit(): Promise<void>;
}

export function createWorkerConnections(config: Config, log: Logger): WorkerConnections {
  const redis = createRedisClient(config, 'commands', log);
  const subscriber = redis.duplicate();
  // On Cluster: classic pub/sub on the installation slot's primary, the one node every worker listens on
  // (docs/events.md, "Raw PUBLISH: exactly once").
  pinClassicPubSub(subscriber, `{${config.PULSEBOARD_PREFIX}}`);
  const shardSubscriber = redis.duplicate();
  const acked = redis.duplicate();
  // Logged through the command connection's listener.
  for (const other of [subscriber, shardSubscriber, acked]) other.on('error', () => undefined);
  const all = [subscriber, shardSubscriber, acked, redis];
  return {
    redis,
    subscriber,
    shardSubscriber,
    acked,
    async connect() {
      await Promise.all(all.map((connection) => connection.connect()));
    },
    drop() {
      for (const connection of all) if (connection.isOpen) connection.destroy();
    },
    ready: () => all.every((connection) => connection.isReady),
    async quit() {
      await Promise.allSettled(all.map(async (connection) => connection.isOpen && connection.quit()));
    },
  };
}
