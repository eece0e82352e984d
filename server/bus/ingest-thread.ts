// Raw and durable ingest run in a worker_thread of each worker process, with their own Redis connections
// (docs/architecture.md, "Ingest runs in its own thread"): a worker whose event loop is saturated by
// fan-out still receives and sequences ingest input on time, and parsing every raw message (every worker
// validates every one) costs the fan-out loop nothing. Counts and lags are posted back in batches and
// land in this worker's metrics.
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { createSequencer, type Sequencer } from '../../shared/publisher.ts';
import type { Config } from '../config.ts';
import { createLogger, type Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { createRedisClient, type RedisClient } from '../redis.ts';
import { DurableIngest } from './durable-ingest.ts';
import type { IngestMetrics } from './ingest-metrics.ts';
import { applyReportBatch, bufferedReport, metricsReport, type ReportBatch } from './ingest-report.ts';
import { RawIngest } from './raw-ingest.ts';

/** How often the thread posts its counts. */
const REPORT_MS = 250;
/** How long a stopping thread may take before it is terminated. */
const STOP_TIMEOUT_MS = 800;
const RESTART_DELAY_MS = 1000;

type ThreadConfig = Pick<
  Config,
  | 'REDIS_URL'
  | 'PULSEBOARD_PREFIX'
  | 'HISTORY_MAX'
  | 'METRIC_HISTORY_MAX'
  | 'TS_MAX_FUTURE_MS'
  | 'INGEST_CLAIM_IDLE_MS'
  | 'LOG_LEVEL'
>;

type ToParent = { kind: 'ready' } | { kind: 'report'; batch: ReportBatch } | { kind: 'stopped' };

export interface IngestThreadOptions {
  config: ThreadConfig;
  metrics: Metrics;
  ingestMetrics: IngestMetrics;
  log: Logger;
}

export interface IngestThread {
  /** Stops ingest (the thread finishes its Redis calls in flight, within a deadline) and ends the thread. */
  stop(): Promise<void>;
}

export interface InProcessIngestOptions extends IngestThreadOptions {
  redis: RedisClient;
  subscriber: RedisClient;
  sequencer: Sequencer;
}

/**
 * `INGEST_THREAD=false`: raw and durable ingest on the worker's own event loop and connections. Starts
 * faster (no thread to load), which the in-process test suites use; under fan-out saturation ingest then
 * waits for the fan-out loop (docs/architecture.md).
 */
export async function startIngestInProcess(options: InProcessIngestOptions): Promise<IngestThread> {
  const { redis, subscriber, sequencer, metrics, ingestMetrics, log, config } = options;
  const report = metricsReport(metrics, ingestMetrics);
  const raw = new RawIngest({ redis, subscriber, sequencer, report, log });
  const durable = new DurableIngest({
    redis,
    sequencer,
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

// The thread loads TypeScript through tsx whichever way the worker itself was started (tsx CLI, PM2's
// bin/pulseboard-worker.js, mocha's --import).
const BOOTSTRAP = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(
  import.meta.url,
)}); }).then((module) => module.runIngestThread());`;

/** Starts the ingest thread and resolves once it holds a raw-ingest position and reads the durable input. */
export async function startIngestThread(options: IngestThreadOptions): Promise<IngestThread> {
  const { config, metrics, ingestMetrics, log } = options;
  let stopping = false;
  let worker: Worker;
  let restartTimer: NodeJS.Timeout | undefined;

  function spawn(): Promise<void> {
    const thread = new Worker(BOOTSTRAP, { eval: true, workerData: { config } });
    worker = thread;
    return new Promise<void>((resolve, reject) => {
      thread.on('message', (message: ToParent) => {
        if (message.kind === 'ready') resolve();
        else if (message.kind === 'report') applyReportBatch(message.batch, metrics, ingestMetrics);
      });
      thread.on('error', (error) => {
        log.error({ err: error }, 'ingest thread failed');
        reject(error);
      });
      thread.on('exit', (code) => {
        reject(new Error(`ingest thread exited with code ${code} before it was ready`));
        if (stopping) return;
        // Other workers keep sequencing meanwhile (docs/events.md); this one starts a fresh thread.
        log.error({ code }, 'ingest thread exited; restarting it');
        restartTimer = setTimeout(() => void spawn().catch(() => undefined), RESTART_DELAY_MS);
      });
    });
  }

  await spawn();
  return {
    async stop() {
      stopping = true;
      clearTimeout(restartTimer);
      const exited = new Promise<void>((resolve) => {
        if (worker.threadId === -1) resolve();
        worker.once('exit', () => resolve());
      });
      worker.postMessage('stop');
      const deadline = setTimeout(() => void worker.terminate(), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(deadline);
    },
  };
}

/** The thread's side: its own Redis connections, raw and durable ingest, batched reports. */
export async function runIngestThread(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('runIngestThread runs in a worker thread');
  const { config } = workerData as { config: ThreadConfig };
  const log = createLogger(config.LOG_LEVEL).child({ thread: 'ingest' });
  const redis = createRedisClient(config.REDIS_URL, 'ingest', log);
  const subscriber = redis.duplicate();
  subscriber.on('error', () => undefined); // logged through the command connection's listener
  await Promise.all([redis.connect(), subscriber.connect()]);
  const sequencer = createSequencer(redis, {
    prefix: config.PULSEBOARD_PREFIX,
    historyMax: config.HISTORY_MAX,
    metricHistoryMax: config.METRIC_HISTORY_MAX,
    maxFutureMs: config.TS_MAX_FUTURE_MS,
  });
  const report = bufferedReport();
  const post = () => {
    const batch = report.take();
    if (batch) port.postMessage({ kind: 'report', batch } satisfies ToParent);
  };
  const reportTimer = setInterval(post, REPORT_MS);
  const raw = new RawIngest({ redis, subscriber, sequencer, report, log });
  const durable = new DurableIngest({
    redis,
    sequencer,
    report,
    log,
    claimIdleMs: config.INGEST_CLAIM_IDLE_MS,
  });
  await raw.start();
  await durable.start();
  port.postMessage({ kind: 'ready' } satisfies ToParent);

  port.on('message', (message) => {
    if (message !== 'stop') return;
    void (async () => {
      // Redis away: calls in flight would wait in node-redis' queue; drop the connections after a moment.
      const drop = setTimeout(() => {
        for (const connection of [subscriber, redis]) if (connection.isOpen) connection.destroy();
      }, STOP_TIMEOUT_MS / 2);
      await Promise.allSettled([raw.stop(), durable.stop()]);
      clearInterval(reportTimer);
      post();
      await Promise.allSettled(
        [subscriber, redis].map(async (connection) => connection.isOpen && connection.quit()),
      );
      clearTimeout(drop);
      port.close();
    })();
  });
}
