// What the ingest paths report (counts, lags): an interface, so raw and durable ingest do not depend on
// prom-client and their tests can count what they report.
import type { EnvelopeType, RejectReason } from '../../shared/events.ts';
import type { Metrics } from '../metrics/worker-metrics.ts';
import type { IngestMetrics, IngestSource } from './ingest-metrics.ts';

type IngestPath = 'ingest' | 'durable';

/** What the ingest paths report. */
export interface IngestReport {
  ingested(type: EnvelopeType, source: IngestPath, board: string): void;
  rejected(reason: RejectReason, source: IngestPath): void;
  lag(source: IngestSource, seconds: number): void;
  retry(source: IngestSource): void;
  claims(count: number): void;
  resync(reason: string): void;
}

/** Counts straight into this worker's metrics. */
export function metricsReport(metrics: Metrics, ingestMetrics: IngestMetrics): IngestReport {
  return {
    ingested: (type, source, board) => {
      metrics.eventsIngested.inc({ type, source });
      ingestMetrics.boardEvents.inc({ board });
    },
    rejected: (reason, source) => metrics.eventsRejected.inc({ reason, source }),
    lag: (source, seconds) => ingestMetrics.lag.observe({ source }, seconds),
    retry: (source) => ingestMetrics.retries.inc({ source }),
    claims: (count) => ingestMetrics.claims.inc(count),
    resync: (reason) => ingestMetrics.resyncs.inc({ reason }),
  };
}
