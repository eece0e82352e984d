// Starts one pulseboard worker: Redis connections, the event bus, the hub, health, the Koa app and the
// HTTP server. Used by server/main.ts, the CLI's `serve` and `demo`, and the tests (port 0).
import { createSequencer } from '../shared/publisher.ts';
import { createApp } from './app.ts';
import { BoardRegistry } from './auth/boards.ts';
import { EventBus } from './bus/event-bus.ts';
import { createIngestMetrics } from './bus/ingest-metrics.ts';
import { startIngest } from './bus/ingest.ts';
import { checkServerConfig, type Config } from './config.ts';
import { Health } from './http/health.ts';
import { ClusterMetrics } from './metrics/cluster-metrics.ts';
import { createMetrics, type Metrics } from './metrics/worker-metrics.ts';
import { withRequestDeadline } from './redis.ts';
import { createWorkerConnections, type WorkerConnections } from './redis/connections.ts';
import { topologyHealth } from './redis/topology-health.ts';
import { topologyOfClient } from './redis/topology.ts';
import { Hub } from './sse/hub.ts';
import { startAccess } from './worker-access.ts';
import { listen } from './worker-server.ts';
import type { Pulseboard, StartOptions } from './worker-types.ts';

export type { Pulseboard, StartOptions } from './worker-types.ts';
import { alsoDeliverTo } from './status/delivery.ts';
import { createPublicStatus } from './status/public-status.ts';

/** How long a stopping worker waits for Redis to take its goodbyes (unsubscribe, final metrics, QUIT). */
const REDIS_GOODBYE_MS = 400;
/**
 * How long a stopping worker lets requests in flight finish (a login's session save, a snapshot) before
 * it cuts their sockets. Streams end at once; with this and REDIS_GOODBYE_MS a stop stays inside the
 * default SHUTDOWN_TIMEOUT_MS (1.2 s). See docs/reliability.md, "Reloads and shutdown".
 */
const IN_FLIGHT_DRAIN_MS = 500;

export async function startPulseboard(config: Config, options: StartOptions): Promise<Pulseboard> {
  checkServerConfig(config);
  const metrics = createMetrics({ defaults: options.defaultMetrics ?? true });
  const connections = createWorkerConnections(config, options.log);
  // What a failed start (port in use, Redis gone mid-start) must undo, newest first: timers, the cluster
  // registration, then the connections. Without it the process keeps running on leaked handles.
  const undo: (() => unknown)[] = [() => connections.drop()];
  try {
    return await startParts(config, options, { metrics, connections, undo });
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
  connections: WorkerConnections;
  undo: (() => unknown)[];
}

async function startParts(config: Config, options: StartOptions, state: StartState): Promise<Pulseboard> {
  const { log } = options;
  const { metrics, connections, undo } = state;
  const { redis, subscriber, shardSubscriber, acked } = connections;
  await connections.connect();
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
  // Acknowledged writes (HTTP publish, durable input) go on their own connection and WAIT for a replica
  // (docs/events.md, "Acknowledged means on a replica").
  const ackedOptions = {
    ...sequencerOptions,
    waitReplicas: config.REDIS_WAIT_REPLICAS,
    waitTimeoutMs: config.REDIS_WAIT_TIMEOUT_MS,
  };
  const ackedSequencer = createSequencer(acked, ackedOptions);
  // Ingest waits up to a few seconds for its raw-ingest position; the rest of the worker starts meanwhile.
  const ingestMetrics = createIngestMetrics(metrics.registry, () => redis.xLen(sequencer.names.ingestStream));
  const ingestStarting = startIngest({
    config,
    metrics,
    ingestMetrics,
    log,
    redis,
    subscriber,
    sequencer,
    acked,
    ackedSequencer,
  });
  ingestStarting.catch(() => undefined); // awaited below
  undo.push(() => ingestStarting.then((ingest) => ingest.stop()).catch(() => undefined));
  // Heartbeats say "events flow" only while the bus is live (docs/events.md, "Heartbeats"). A board's shard
  // channel is followed while the worker has a stream of it (server/bus/event-bus.ts); boards of public
  // status streams stay followed.
  let idle: (board: string) => void = () => undefined;
  const hub: Hub = new Hub({
    metrics,
    heartbeatMs: config.HEARTBEAT_MS,
    sourceLive: (): boolean => bus.live,
    onBoardIdle: (board) => idle(board),
  });
  const boards = new BoardRegistry({ redis: requestRedis, names: sequencer.names, log });
  const publicStatus = createPublicStatus({
    redis: requestRedis,
    names: sequencer.names,
    boards,
    log,
    config,
  });
  const publicBoards = new Set<string>();
  const bus = new EventBus({
    redis,
    subscriber: shardSubscriber,
    sequencer,
    delivery: alsoDeliverTo(hub, publicStatus.hub),
    streamsOf: (board) => hub.streamsOf(board) + (publicBoards.has(board) ? 1 : 0),
    forgetBoard: (board) => hub.dropBoard(board),
    ...(options.boardLingerMs === undefined ? {} : { lingerMs: options.boardLingerMs }),
    metrics,
    log,
  });
  idle = (board) => bus.boardIdle(board);
  await bus.start();
  undo.push(() => bus.stop());
  const health = new Health({
    redis,
    // On Cluster a board held for a gap fill is not ready for that board only (docs/scaling.md).
    ...(topologyOfClient(redis) === 'cluster'
      ? { subscriberLive: () => subscriber.isReady, heldBoards: () => bus.heldBoards() }
      : { subscriberLive: () => bus.live }),
    metrics,
    ...topologyHealth(redis, config.PULSEBOARD_PREFIX, () => bus.followedBoards()),
  });
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

  const { users, sessionKeys, control, streamSessions, streamQuota } = await startAccess({
    config,
    log,
    redis,
    requestRedis,
    subscriber,
    names: sequencer.names,
    hub,
    ingestMetrics,
    boards,
    publicStatus,
    undo,
  });

  const ingest = await ingestStarting;

  const app = createApp({
    config,
    redis: requestRedis,
    names: sequencer.names,
    sequencer: createSequencer(withRequestDeadline(acked, config.REDIS_REQUEST_TIMEOUT_MS), ackedOptions),
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
    publicStatus: publicStatus.routes((streamed) => {
      for (const board of streamed) publicBoards.add(board);
      return bus.follow(streamed);
    }),
    ...(options.publicDir ? { publicDir: options.publicDir } : {}),
  });
  const { server, url, port, accept, drainInFlight } = await listen(config, app, { log, metrics });
  if (accept === 'round-robin')
    log.warn(
      'the cluster primary accepts every connection and hands it to a worker (round-robin), about twice ' +
        'the cost of opening a stream: start PM2 with NODE_CLUSTER_SCHED_POLICY=none in its environment ' +
        '(docs/deployment.md, "How workers get their connections")',
    );

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
    // Their clients are already reconnecting elsewhere: their streams must not count there any more.
    const leasesReleased = streamQuota.releaseAll();
    await drainInFlight(IN_FLIGHT_DRAIN_MS);
    await leasesReleased;
    server.closeAllConnections();
    if (!connections.ready()) connections.drop();
    const redisDeadline = setTimeout(() => connections.drop(), REDIS_GOODBYE_MS);
    await control.stop().catch(() => undefined);
    await boards.stop().catch(() => undefined);
    await publicStatus.stop().catch(() => undefined);
    await ingest.stop();
    await bus.stop();
    // Streams have ended, so these are the final counts: keep them in the cluster totals.
    await clusterMetrics.retire();
    await connections.quit();
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
