// Cluster-wide metrics (docs/design.md, "Health, metrics, logs"): whichever worker of whichever host answers
// GET /metrics returns the totals of every worker sharing the Redis. prom-client's AggregatorRegistry asks
// Node's cluster master, which PM2 owns (clusterMetrics() returns "" inside a PM2 worker), so the workers
// gather through Redis instead; docs/operations.md explains the choice.
//
// - Every worker keeps itself in the live set and leaves its final counters in the retired hash when it
//   stops gracefully (worker-store.ts).
// - A scrape asks every other live worker for its registry (gather.ts), waits for them up to
//   `collectTimeoutMs`, then sums (render.ts). Workers that did not answer are counted in
//   pulseboard_cluster_workers.
import type { Registry } from 'prom-client';
import type { RedisNames } from '../../shared/keys.ts';
import type { Logger } from '../log.ts';
import type { RedisClient } from '../redis.ts';
import { MetricsGather } from './gather.ts';
import { parseMetricList, retainable, type MetricList } from './metric-list.ts';
import { renderScrape, type MetricsScope, type Scrape } from './render.ts';
import { createWorkerId, HEARTBEATS_TO_EXPIRY, parseRetired, WorkerStore } from './worker-store.ts';

export interface ClusterMetricsOptions {
  /** Command connection. */
  redis: RedisClient;
  /** The worker's subscriber connection (shared with the event bus). */
  subscriber: RedisClient;
  names: RedisNames;
  /** This worker's registry. */
  registry: Registry;
  log: Logger;
  /** How long a scrape waits for the other workers' answers. Default 1000 ms. */
  collectTimeoutMs?: number;
  /** Period of the worker's heartbeat in `{prefix}:workers`. Default 2000 ms. */
  heartbeatMs?: number;
}

interface ClusterView {
  answers: Map<string, MetricList>;
  missing: string[];
  retiredFields: [string, string][];
}

export class ClusterMetrics {
  readonly workerId: string;
  private readonly options: ClusterMetricsOptions;
  private readonly heartbeatMs: number;
  private readonly collectTimeoutMs: number;
  private readonly store: WorkerStore;
  private readonly gatherer: MetricsGather;
  private timer: NodeJS.Timeout | undefined;
  private retired = false;

  constructor(options: ClusterMetricsOptions) {
    this.options = options;
    this.workerId = createWorkerId();
    this.heartbeatMs = options.heartbeatMs ?? 2000;
    this.collectTimeoutMs = options.collectTimeoutMs ?? 1000;
    this.store = new WorkerStore(options);
    this.gatherer = new MetricsGather({
      ...options,
      workerId: this.workerId,
      collectTimeoutMs: this.collectTimeoutMs,
    });
  }

  /** Subscribes to scrape requests and registers the worker (before it reports ready). */
  async start(): Promise<void> {
    await this.gatherer.subscribe();
    await this.beat();
    this.timer = setInterval(() => {
      this.beat().catch(() => undefined); // Redis away: health reports it; the next beat re-registers
    }, this.heartbeatMs);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    // Offline, node-redis would queue beats and replay them all on reconnect: skip instead.
    if (this.retired || !this.options.redis.isReady) return;
    await this.store.beat(this.workerId);
  }

  /**
   * Graceful stop: leaves this worker's final counters and histograms in the retired hash and leaves the
   * live set in one transaction. Call after the last stream has ended, before Redis closes.
   */
  async retire(): Promise<void> {
    if (this.retired) return;
    this.retired = true;
    clearInterval(this.timer);
    this.gatherer.releaseWaiting();
    const { redis, log } = this.options;
    // Offline, node-redis would queue the transaction until Redis returns: past the shutdown deadline.
    if (!redis.isReady) {
      log.warn('redis unavailable at stop; this worker leaves the cluster totals');
      return;
    }
    await this.store.retire(this.workerId, retainable(await this.localMetrics()));
    await this.gatherer.unsubscribe();
  }

  private async localMetrics(): Promise<MetricList> {
    return parseMetricList(JSON.stringify(await this.options.registry.getMetricsAsJSON()));
  }

  /**
   * The rest of the installation: the other live workers' answers, who stayed silent, and what stopped
   * workers left behind (read together with the live set, so no worker is counted twice).
   */
  private async collectCluster(): Promise<ClusterView> {
    const snapshot = await this.store.read(this.heartbeatMs * HEARTBEATS_TO_EXPIRY);
    let { retiredFields } = snapshot;
    const others = snapshot.workers.filter((worker) => worker !== this.workerId);
    const answers = await this.gatherer.gather(others);
    let missing = others.filter((worker) => !answers.has(worker));
    if (missing.length > 0) {
      // A worker that stopped during the scrape has left its final counters in the retired hash.
      const late = await this.store.retiredOf(missing);
      missing.forEach((worker, index) => {
        const json = late[index];
        if (json === undefined) return;
        answers.set(worker, parseMetricList(json));
        retiredFields = retiredFields.filter(([field]) => field !== worker);
      });
      missing = missing.filter((worker) => !answers.has(worker));
    }
    return { answers, missing, retiredFields };
  }

  /**
   * One scrape. `cluster`: every live worker summed, plus what stopped workers left behind.
   * `workers`: the same series with a `worker` label (stopped workers as worker="retired").
   * Without Redis (or if it stalls) the answer is this worker's own metrics, marked incomplete.
   */
  async scrape(scope: MetricsScope): Promise<Scrape> {
    const { redis, log } = this.options;
    const local = await this.localMetrics();
    let view: ClusterView = { answers: new Map(), missing: [], retiredFields: [] };
    let complete = false;
    if (redis.isReady) {
      try {
        view = await withDeadline(this.collectCluster(), this.collectTimeoutMs + 1000);
        complete = true;
      } catch (error) {
        log.warn({ err: error }, 'cluster metrics unavailable; answering with this worker only');
      }
    }
    const retired = parseRetired(view.retiredFields);
    if (complete) await this.store.compactRetired(retired);
    return renderScrape({
      scope,
      workerId: this.workerId,
      local,
      answers: view.answers,
      missing: view.missing,
      retired: retired.map((entry) => entry.list),
      complete,
    });
  }
}

/** Rejects when `work` takes longer than `ms` (its late outcome is ignored). */
async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  work.catch(() => undefined);
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer from Redis within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
