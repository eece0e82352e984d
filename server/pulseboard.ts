// Starts one pulseboard worker: Redis connections, the event bus, the hub, health, the Koa app and the
// HTTP server. Used by server/main.ts, the CLI's `serve` and `demo`, and the tests (port 0).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import { createSequencer } from '../shared/publisher.ts';
import { createApp } from './app.ts';
import { BoardRegistry, boardsVisibleTo } from './auth/boards.ts';
import { ensureFirstAdmin } from './auth/first-admin.ts';
import { resolveSessionKeys } from './auth/session-keys.ts';
import { StreamQuota } from './auth/stream-quota.ts';
import { startStreamSessionWatch } from './auth/stream-sessions.ts';
import { FIRST_ADMIN_NAME, UserStore } from './auth/users.ts';
import { subscribeControl, type VisibleBoardsOf } from './bus/control.ts';
import { EventBus } from './bus/event-bus.ts';
import { createIngestMetrics } from './bus/ingest-metrics.ts';
import { startIngest } from './bus/ingest.ts';
import { checkServerConfig, type Config } from './config.ts';
import { limitConnections } from './http/connection-limits.ts';
import { Health } from './http/health.ts';
import type { Logger } from './log.ts';
import { ClusterMetrics } from './metrics/cluster-metrics.ts';
import { createMetrics, type Metrics } from './metrics/worker-metrics.ts';
import { createRedisClient, withRequestDeadline, type RedisClient } from './redis.ts';
import { Hub } from './sse/hub.ts';
import { alsoDeliverTo } from './status/delivery.ts';
import { createPublicStatus, type PublicStatusPages } from './status/public-status.ts';

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

/** How long a stopping worker waits for Redis to take its goodbyes (unsubscribe, final metrics, QUIT). */
const REDIS_GOODBYE_MS = 400;
/**
 * How long a stopping worker lets requests in flight finish (a login's session save, a snapshot) before
 * it cuts their sockets. Streams end at once; with this and REDIS_GOODBYE_MS a stop stays inside the
 * default SHUTDOWN_TIMEOUT_MS (1.2 s). See docs/reliability.md, "Reloads and shutdown".
 */
const IN_FLIGHT_DRAIN_MS = 500;

export interface StartOptions {
  log: Logger;
  /** Folder of the bundled client; defaults to build/public. */
  publicDir?: string;
  /** Collect Node's default metrics (off in tests that start many apps). Default true. */
  defaultMetrics?: boolean;
}

export async function startPulseboard(config: Config, options: StartOptions): Promise<Pulseboard> {
  const { log } = options;
  checkServerConfig(config);
  const metrics = createMetrics({ defaults: options.defaultMetrics ?? true });
  const redis = createRedisClient(config.REDIS_URL, 'commands', log);
  const subscriber = redis.duplicate();
  subscriber.on('error', () => undefined); // logged through the command connection's listener
  // While Redis is away node-redis queues commands until it returns; these drop the connections, which
  // fails whatever is still queued.
  const dropRedis = () => {
    for (const connection of [subscriber, redis]) if (connection.isOpen) connection.destroy();
  };
  // What a failed start (port in use, Redis gone mid-start) must undo, newest first: timers, the cluster
  // registration, then the connections. Without it the process keeps running on leaked handles.
  const undo: (() => unknown)[] = [dropRedis];
  try {
    return await startParts(config, options, { metrics, redis, subscriber, dropRedis, undo });
  } catch (error) {
    for (const step of undo.reverse()) {
      try {
        await step();
      } catch {
        // Best effort: the start already failed with the error that matters.
      }
    }
    throw error;
  }
}

interface StartState {
  metrics: Metrics;
  redis: RedisClient;
  subscriber: RedisClient;
  dropRedis: () => void;
  undo: (() => unknown)[];
}

async function startParts(config: Config, options: StartOptions, state: StartState): Promise<Pulseboard> {
  const { log } = options;
  const { metrics, redis, subscriber, dropRedis, undo } = state;
  await Promise.all([redis.connect(), subscriber.connect()]);
  // The request path's view of the same connection: a command that cannot reach Redis within
  // REDIS_REQUEST_TIMEOUT_MS fails, and the request answers 503 + Retry-After (server/redis.ts).
  const requestRedis = withRequestDeadline(redis, config.REDIS_REQUEST_TIMEOUT_MS);

  const sequencerOptions = {
    prefix: config.PULSEBOARD_PREFIX,
    historyMax: config.HISTORY_MAX,
    metricHistoryMax: config.METRIC_HISTORY_MAX,
    maxFutureMs: config.TS_MAX_FUTURE_MS,
  };
  const sequencer = createSequencer(redis, sequencerOptions);
  // Ingest waits up to a few seconds for its raw-ingest position; the rest of the worker starts meanwhile.
  const ingestMetrics = createIngestMetrics(metrics.registry, () => redis.xLen(sequencer.names.ingestStream));
  const ingestStarting = startIngest({ config, metrics, ingestMetrics, log, redis, subscriber, sequencer });
  ingestStarting.catch(() => undefined); // awaited below
  undo.push(() => ingestStarting.then((ingest) => ingest.stop()).catch(() => undefined));
  // Heartbeats say "events flow" only while the bus is live (docs/events.md, "Heartbeats").
  const hub: Hub = new Hub({
    metrics,
    heartbeatMs: config.HEARTBEAT_MS,
    sourceLive: (): boolean => bus.live,
  });
  const boards = new BoardRegistry({ redis: requestRedis, names: sequencer.names, log });
  const publicStatus = createPublicStatus({
    redis: requestRedis,
    names: sequencer.names,
    boards,
    log,
    config,
  });
  const bus = new EventBus({
    redis,
    subscriber,
    sequencer,
    delivery: alsoDeliverTo(hub, publicStatus.hub),
    metrics,
    log,
  });
  await bus.start();
  undo.push(() => bus.stop());
  const health = new Health({ redis, subscriberLive: () => bus.live, metrics });
  await health.start();
  undo.push(() => health.stop());
  const clusterMetrics = new ClusterMetrics({
    redis,
    subscriber,
    names: sequencer.names,
    registry: metrics.registry,
    log,
    collectTimeoutMs: config.METRICS_COLLECT_TIMEOUT_MS,
  });
  await clusterMetrics.start();
  // Leaves the live-worker set, so scrapes do not wait for a worker that never served.
  undo.push(() => clusterMetrics.retire());
  hub.startHeartbeats();
  undo.push(() => hub.stopHeartbeats());

  const users = new UserStore(requestRedis, sequencer.names);
  const sessionKeys = await resolveSessionKeys(redis, sequencer.names, config.SESSION_KEYS, log);
  const firstAdmin = await ensureFirstAdmin(users, config.PULSEBOARD_ADMIN_PASSWORD);
  if (firstAdmin.generatedPassword) {
    // Shown once, by the one worker that created the user; only the hash is kept.
    log.warn(
      { username: FIRST_ADMIN_NAME, password: firstAdmin.generatedPassword },
      'no users yet: created the admin user with this random password (shown once; change it with `pulseboard user passwd admin`)',
    );
  } else if (firstAdmin.created) {
    log.info(
      { username: FIRST_ADMIN_NAME },
      'no users yet: created the admin user from PULSEBOARD_ADMIN_PASSWORD',
    );
  }
  await boards.listen(subscriber);
  undo.push(() => boards.stop());
  await publicStatus.start(subscriber);
  undo.push(() => publicStatus.stop());
  await boards.refresh();
  // What users may see now, from their records (read fresh) and the registry: streams are narrowed to it.
  const visibleBoardsOf: VisibleBoardsOf = async (userNames) => {
    const [records, existing] = await Promise.all([users.getMany(userNames), boards.names()]);
    return new Map(
      [...records].map(([name, record]) => [name, [...boardsVisibleTo(record, existing)].sort()]),
    );
  };
  const control = await subscribeControl({
    subscriber,
    names: sequencer.names,
    hub,
    log,
    visibleBoardsOf,
    // Board labels stay bounded by the boards that exist (docs/operations.md, "Metrics"): a removed
    // board's series goes, so boards created and removed over a worker's life do not pile up.
    onControl: (message) => {
      if (message.type === 'board-removed') ingestMetrics.boardEvents.remove({ board: message.board });
    },
  });
  undo.push(() => control.stop());
  const streamSessions = startStreamSessionWatch({
    hub,
    redis,
    names: sequencer.names,
    users,
    log,
    intervalMs: config.SESSION_CHECK_MS,
    visibleBoardsOf,
  });
  undo.push(() => streamSessions.stop());
  const streamQuota = new StreamQuota({
    redis: requestRedis,
    names: sequencer.names,
    limit: config.MAX_STREAMS_PER_SESSION,
    log,
  });
  streamQuota.start();
  undo.push(() => streamQuota.stop());

  const ingest = await ingestStarting;

  const app = createApp({
    config,
    redis: requestRedis,
    names: sequencer.names,
    sequencer: createSequencer(requestRedis, sequencerOptions),
    hub,
    health,
    metrics,
    clusterMetrics,
    log,
    sessionKeys,
    users,
    boards,
    boardEvents: ingestMetrics.boardEvents,
    streamQuota,
    followBoards: (streamed) => bus.follow(streamed),
    publicStatus: publicStatus.routes((streamed) => bus.follow(streamed)),
    ...(options.publicDir ? { publicDir: options.publicDir } : {}),
  });
  // Headers and body deadlines, checked every second (Node's default is every 30 s): a slowloris socket
  // is answered 408 and closed within HEADERS_TIMEOUT_MS + 1 s. Streams are not cut: requestTimeout
  // ends when the request is received, not when the response ends (test/server/http/slow-clients.test.ts).
  const handleRequest = app.callback();
  const server = http.createServer(
    {
      headersTimeout: config.HEADERS_TIMEOUT_MS,
      requestTimeout: config.REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: 1000,
    },
    // Koa's handler settles every request itself (errors go to ctx.onerror), so its promise never rejects.
    (request, response) => void handleRequest(request, response),
  );
  // Longer than the usual load-balancer idle timeout (60 s), so the balancer closes idle sockets first.
  server.keepAliveTimeout = 65_000;
  limitConnections(server, {
    maxConnections: config.MAX_CONNECTIONS,
    maxPerAddress: config.TRUST_PROXY ? undefined : config.MAX_CONNECTIONS_PER_IP,
    log,
    metrics,
  });
  // Requests whose response has not closed yet; stop() lets them finish before Redis closes.
  const inFlight = new Set<http.ServerResponse>();
  server.on('request', (_request: http.IncomingMessage, response: http.ServerResponse) => {
    inFlight.add(response);
    response.once('close', () => inFlight.delete(response));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, config.HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : config.HOST;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  /** Resolves when every request in flight has ended, or after `ms`. */
  async function drainInFlight(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (inFlight.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  // Drain in order (docs/reliability.md, "Reloads and shutdown"): stop accepting, end streams, let the
  // requests in flight finish (their session saves and replays still need Redis), cut what is left,
  // then say goodbye to Redis and close it.
  async function stop(): Promise<void> {
    health.draining = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    hub.closeAll('shutdown');
    hub.stopHeartbeats();
    publicStatus.hub.closeAll();
    health.stop();
    streamSessions.stop();
    streamQuota.stop();
    await drainInFlight(IN_FLIGHT_DRAIN_MS);
    server.closeAllConnections();
    if (!redis.isReady || !subscriber.isReady) dropRedis();
    const redisDeadline = setTimeout(dropRedis, REDIS_GOODBYE_MS);
    await control.stop().catch(() => undefined);
    await boards.stop().catch(() => undefined);
    await publicStatus.stop().catch(() => undefined);
    await ingest.stop();
    await bus.stop();
    // Streams have ended, so these are the final counts: keep them in the cluster totals.
    await clusterMetrics.retire();
    await Promise.allSettled(
      [subscriber, redis].map(async (connection) => connection.isOpen && connection.quit()),
    );
    clearTimeout(redisDeadline);
    await closed;
  }

  let stopping: Promise<void> | undefined;
  return {
    config,
    server,
    koa: app,
    url,
    port,
    hub,
    publicStatus,
    health,
    metrics,
    clusterMetrics,
    users,
    boards,
    redis,
    subscriber,
    stop: () => (stopping ??= stop()),
  };
}
