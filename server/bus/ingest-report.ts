// What the ingest paths report (counts, lags), apart from prom-client so the ingest thread (which only
// buffers reports and posts them) does not load it.
import type { EnvelopeType, RejectReason } from '../../shared/events.ts';
import type { Metrics } from '../metrics.ts';
import type { IngestMetrics, IngestSource } from './ingest-metrics.ts';

type IngestPath = 'ingest' | 'durable';

/** What the ingest paths report; counted into metrics directly or, from the ingest thread, in batches. */
export interface IngestReport {
  ingested(type: EnvelopeType, source: IngestPath): void;
  rejected(reason: RejectReason, source: IngestPath): void;
  lag(source: IngestSource, seconds: number): void;
  retry(source: IngestSource): void;
  claims(count: number): void;
  resync(reason: string): void;
}

/** Counts straight into this worker's metrics. */
export function metricsReport(metrics: Metrics, ingestMetrics: IngestMetrics): IngestReport {
  return {
    ingested: (type, source) => metrics.eventsIngested.inc({ type, source }),
    rejected: (reason, source) => metrics.eventsRejected.inc({ reason, source }),
    lag: (source, seconds) => ingestMetrics.lag.observe({ source }, seconds),
    retry: (source) => ingestMetrics.retries.inc({ source }),
    claims: (count) => ingestMetrics.claims.inc(count),
    resync: (reason) => ingestMetrics.resyncs.inc({ reason }),
  };
}

/** A batch of reports, as posted by the ingest thread: counts by joined labels, and the lag samples. */
export interface ReportBatch {
  counts: Record<string, number>;
  lags: { source: IngestSource; seconds: number }[];
}

/** Collects reports into a batch (`take()` hands it over and starts a new one). */
export function bufferedReport(): IngestReport & { take(): ReportBatch | undefined } {
  let batch: ReportBatch = { counts: {}, lags: [] };
  let empty = true;
  const count = (key: string, by = 1) => {
    batch.counts[key] = (batch.counts[key] ?? 0) + by;
    empty = false;
  };
  return {
    ingested: (type, source) => count(`ingested|${type}|${source}`),
    rejected: (reason, source) => count(`rejected|${reason}|${source}`),
    lag: (source, seconds) => {
      batch.lags.push({ source, seconds });
      empty = false;
    },
    retry: (source) => count(`retry|${source}`),
    claims: (by) => count('claims', by),
    resync: (reason) => count(`resync|${reason}`),
    take() {
      if (empty) return undefined;
      const taken = batch;
      batch = { counts: {}, lags: [] };
      empty = true;
      return taken;
    },
  };
}

/** Applies a batch from the ingest thread to this worker's metrics. */
export function applyReportBatch(batch: ReportBatch, metrics: Metrics, ingestMetrics: IngestMetrics): void {
  for (const [key, value] of Object.entries(batch.counts)) {
    const [kind, first = '', second = ''] = key.split('|');
    if (kind === 'ingested') metrics.eventsIngested.inc({ type: first, source: second }, value);
    else if (kind === 'rejected') metrics.eventsRejected.inc({ reason: first, source: second }, value);
    else if (kind === 'retry') ingestMetrics.retries.inc({ source: first }, value);
    else if (kind === 'claims') ingestMetrics.claims.inc(value);
    else if (kind === 'resync') ingestMetrics.resyncs.inc({ reason: first }, value);
  }
  for (const { source, seconds } of batch.lags) ingestMetrics.lag.observe({ source }, seconds);
}
