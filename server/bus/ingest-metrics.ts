// Metrics of the two ingest paths (docs/events.md, "Metrics of the pipeline"). Labels are fixed sets
// (`source`: raw | durable), never input, except `board`: only boards an admin created can be sequenced
// (an unknown one is refused), so that set is bounded by the boards created during a worker's life.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

const BACKLOG_READ_TIMEOUT_MS = 250;

export type IngestSource = 'raw' | 'durable';

export interface IngestMetrics {
  /** Arrival at the worker (raw) or XADD (durable) to sequenced. */
  lag: Histogram<'source'>;
  /** Sequencing calls that failed and were retried. */
  retries: Counter<'source'>;
  /** Durable entries taken over from a consumer that stopped answering. */
  claims: Counter;
  /** Raw-ingest positions dropped (marker unknown or expired, count out of step, queue overflow). */
  resyncs: Counter<'reason'>;
  /** Durable entries not yet sequenced (XLEN of the input stream), read at scrape time. */
  backlog: Gauge;
  /** Events sequenced by this worker, by board, on every path (raw, durable, HTTP). */
  boardEvents: Counter<'board'>;
}

export function createIngestMetrics(registry: Registry, readBacklog: () => Promise<number>): IngestMetrics {
  const registers = [registry];
  return {
    lag: new Histogram({
      name: 'pulseboard_ingest_lag_seconds',
      help: 'Time from arrival (raw PUBLISH) or XADD (durable input) to sequencing, by source',
      labelNames: ['source'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    retries: new Counter({
      name: 'pulseboard_ingest_retries_total',
      help: 'Ingest sequencing calls that failed (Redis away, timeout) and were retried, by source',
      labelNames: ['source'],
      registers,
    }),
    claims: new Counter({
      name: 'pulseboard_ingest_claims_total',
      help: 'Durable-input entries claimed from a consumer that stopped answering',
      registers,
    }),
    resyncs: new Counter({
      name: 'pulseboard_ingest_resyncs_total',
      help: 'Raw-ingest positions given up by this worker (its count restarts at a new marker), by reason',
      labelNames: ['reason'],
      registers,
    }),
    boardEvents: new Counter({
      name: 'pulseboard_board_events_total',
      help: 'Events sequenced by this worker, by board (raw PUBLISH, durable input and POST /api/publish)',
      labelNames: ['board'],
      registers,
    }),
    backlog: new Gauge({
      name: 'pulseboard_ingest_backlog',
      help: 'Durable-input entries not yet sequenced (XLEN of the input stream)',
      registers,
      // Every worker reads the same stream: the cluster view is the value, not a sum.
      aggregator: 'max',
      async collect() {
        // Bounded: while Redis is away node-redis queues the command, and a scrape must not wait for it.
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timeout')), BACKLOG_READ_TIMEOUT_MS);
        });
        try {
          this.set(await Promise.race([readBacklog(), timeout]));
        } catch {
          // Redis away: keep the last value; the redis_connected gauge tells why.
        } finally {
          clearTimeout(timer);
        }
      },
    }),
  };
}
