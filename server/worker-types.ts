// What startPulseboard (server/pulseboard.ts) takes and gives: one running worker.
import type http from 'node:http';
import type Koa from 'koa';
import type { BoardRegistry } from './auth/boards.ts';
import type { UserStore } from './auth/users.ts';
import type { Config } from './config.ts';
import type { Health } from './http/health.ts';
import type { Logger } from './log.ts';
import type { ClusterMetrics } from './metrics/cluster-metrics.ts';
import type { Metrics } from './metrics/worker-metrics.ts';
import type { RedisClient } from './redis.ts';
import type { Hub } from './sse/hub.ts';
import type { PublicStatusPages } from './status/public-status.ts';

export interface Pulseboard {
  config: Config;
  server: http.Server;
  /** The Koa app behind `server` (tests observe its request contexts). */
  koa: Koa;
  /** Base URL the server listens on, e.g. http://127.0.0.1:3000 */
  url: string;
  port: number;
  hub: Hub;
  /** Public status pages and their streams (docs/status-pages.md). */
  publicStatus: PublicStatusPages;
  health: Health;
  metrics: Metrics;
  clusterMetrics: ClusterMetrics;
  users: UserStore;
  /** This worker's view of the boards and of who may see them. */
  boards: BoardRegistry;
  redis: RedisClient;
  subscriber: RedisClient;
  /** Graceful stop: health turns 503, no new connections, streams end, Redis closes. */
  stop(): Promise<void>;
}

export interface StartOptions {
  log: Logger;
  /** Folder of the bundled client; defaults to build/public. */
  publicDir?: string;
  /** Collect Node's default metrics (off in tests that start many apps). Default true. */
  defaultMetrics?: boolean;
  /** How long a board stays subscribed after its last stream left (server/bus/event-bus.ts). */
  boardLingerMs?: number;
}
