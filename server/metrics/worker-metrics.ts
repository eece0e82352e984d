// Prometheus metrics of one worker (prom-client). Each app gets its own Registry, so several apps can run
// in one process (tests) without clashing names.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  sseConnections: Gauge;
  eventsIngested: Counter<'type' | 'source'>;
  eventsRejected: Counter<'reason' | 'source'>;
  deliveries: Counter;
  publishToWriteLag: Histogram;
  slowConsumerCloses: Counter;
  replays: Counter<'kind'>;
  resets: Counter;
  logins: Counter<'result'>;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  redisConnected: Gauge<'connection'>;
  connectionsRefused: Counter<'reason'>;
}

export function createMetrics(options: { defaults?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaults ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    sseConnections: new Gauge({
      name: 'pulseboard_sse_connections',
      help: 'Open SSE connections',
      registers,
    }),
    eventsIngested: new Counter({
      name: 'pulseboard_events_ingested_total',
      help: 'Events sequenced by this worker, by type and publish path',
      labelNames: ['type', 'source'],
      registers,
    }),
    eventsRejected: new Counter({
      name: 'pulseboard_events_rejected_total',
      help: 'Inputs rejected, by reason and path',
      labelNames: ['reason', 'source'],
      registers,
    }),
    deliveries: new Counter({
      name: 'pulseboard_deliveries_total',
      help: 'Events written to SSE connections (one per event per connection)',
      registers,
    }),
    publishToWriteLag: new Histogram({
      name: 'pulseboard_publish_to_write_seconds',
      help: 'Time from sequencing (event ts) to the write to SSE connections',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    slowConsumerCloses: new Counter({
      name: 'pulseboard_slow_consumer_closes_total',
      help: 'SSE connections closed because their unsent bytes passed SSE_MAX_BUFFER_BYTES',
      registers,
    }),
    replays: new Counter({
      name: 'pulseboard_replays_total',
      help: 'Replays from the log: client resumes (Last-Event-ID) and worker gap fills',
      labelNames: ['kind'],
      registers,
    }),
    resets: new Counter({
      name: 'pulseboard_resets_total',
      help: 'reset events sent because a client or worker id was older than the retained log',
      registers,
    }),
    logins: new Counter({
      name: 'pulseboard_logins_total',
      help: 'Login attempts by result',
      labelNames: ['result'],
      registers,
    }),
    httpDuration: new Histogram({
      name: 'pulseboard_http_request_duration_seconds',
      help: 'HTTP request durations (SSE streams excluded)',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    redisConnected: new Gauge({
      name: 'pulseboard_redis_connected',
      help: '1 when the Redis connection is ready, by connection (commands, subscriber)',
      labelNames: ['connection'],
      registers,
    }),
    connectionsRefused: new Counter({
      name: 'pulseboard_connections_refused_total',
      help: 'Connections and streams refused by a cap: per_ip, global (sockets), streams_per_session (GET /events)',
      labelNames: ['reason'],
      registers,
    }),
  };
}
