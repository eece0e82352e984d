// Raw and durable ingest of one worker, on its own event loop and Redis connections (docs/events.md,
// "Raw PUBLISH: exactly once" and "Durable input"). Measured at the bench's heaviest scenario (5,000
// streams x 100 events/s, all of them raw PUBLISH), sequencing kept up beside fan-out: ingest lag p99
// 0.5 s (docs/performance.md).
import type { Sequencer } from '../../shared/publisher.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics/worker-metrics.ts';
import type { RedisClient } from '../redis.ts';
import { DurableIngest } from './durable-ingest.ts';
import type { IngestMetrics } from './ingest-metrics.ts';
import { metricsReport } from './ingest-report.ts';
import { RawIngest } from './raw-ingest.ts';

export interface IngestOptions {
  config: Pick<Config, 'INGEST_CLAIM_IDLE_MS'>;
  metrics: Metrics;
  ingestMetrics: IngestMetrics;
  log: Logger;
  redis: RedisClient;
  subscriber: RedisClient;
  sequencer: Sequencer;
  /** The acknowledged-write connection and its sequencer (WAIT for replicas): the durable input's. */
  acked: RedisClient;
  ackedSequencer: Sequencer;
}

export interface Ingest {
  /** Stops both inputs; calls in flight finish first. */
  stop(): Promise<void>;
}

/** Starts raw and durable ingest; resolves once this worker holds a raw-ingest position (or gave up waiting). */
export async function startIngest(options: IngestOptions): Promise<Ingest> {
  const { redis, subscriber, sequencer, acked, ackedSequencer, metrics, ingestMetrics, log, config } =
    options;
  const report = metricsReport(metrics, ingestMetrics);
  const raw = new RawIngest({ redis, subscriber, sequencer, report, log });
  const durable = new DurableIngest({
    redis: acked,
    sequencer: ackedSequencer,
    report,
    log,
    claimIdleMs: config.INGEST_CLAIM_IDLE_MS,
  });
  await raw.start();
  await durable.start();
  return {
    async stop() {
      await Promise.all([raw.stop(), durable.stop()]);
    },
  };
}
