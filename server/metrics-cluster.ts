// Cluster-wide metrics (docs/design.md, "Health, metrics, logs"): whichever worker of whichever host answers
// GET /metrics returns the totals of every worker sharing the Redis. prom-client's AggregatorRegistry asks
// Node's cluster master, which PM2 owns (clusterMetrics() returns "" inside a PM2 worker), so the workers
// gather through Redis instead; docs/operations.md explains the choice.
//
// - Every worker keeps itself in the `{prefix}:workers` sorted set (score: Redis time of its last beat).
// - The scraping worker publishes a nonce on `<prefix>:metrics:collect`; every other live worker writes
//   its registry as JSON into a short-lived hash for that nonce and says so on `<prefix>:metrics:answers`.
// - The scraper waits for every live worker (up to `collectTimeoutMs`), then sums with
//   `AggregatorRegistry.aggregate`. Workers that did not answer are counted in pulseboard_cluster_workers.
// - A worker that stops gracefully (reload, deploy) leaves its final counters and histograms in
//   `{prefix}:metrics:retired`, so cluster totals do not fall at every `pm2 reload`.
import { randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import { AggregatorRegistry, Gauge, Registry } from 'prom-client';
import * as z from 'zod';
import type { RedisNames } from '../shared/keys.ts';
import { createScriptRunner } from '../shared/publisher.ts';
import type { Logger } from './log.ts';
import type { RedisClient } from './redis.ts';

export type MetricsScope = 'cluster' | 'workers';

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

export interface Scrape {
  contentType: string;
  text: string;
  answered: number;
  missing: string[];
}

/** Label given to the counters left behind by stopped workers in the per-worker breakdown. */
export const RETIRED_WORKER = 'retired';
/** A worker missing this many heartbeats is considered gone. */
const HEARTBEATS_TO_EXPIRY = 3;
/** Answers outlive a scrape that timed out by this much, then Redis drops them. */
const ANSWERS_TTL_MS = 10_000;
const MERGED_FIELD = '*merged';

// KEYS[1] workers zset; ARGV[1] worker id. Redis's clock, so hosts with skewed clocks agree.
const HEARTBEAT_SCRIPT = `
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], t[1] * 1000 + math.floor(t[2] / 1000), ARGV[1])
return 1`;

// KEYS[1] workers zset, KEYS[2] retired hash; ARGV[1] expiry ms. Drops expired workers, then reads the
// live workers and the retired counters in one step: a worker is either live or retired, never both.
const SNAPSHOT_SCRIPT = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[1])))
return { redis.call('ZRANGE', KEYS[1], 0, -1), redis.call('HGETALL', KEYS[2]) }`;

// KEYS[1] retired hash; ARGV[1] merged JSON read before ('' if none), ARGV[2] new merged JSON, ARGV[3..]
// fields folded into it. Compare-and-swap, so two scrapers compacting at once cannot lose a worker.
const COMPACT_SCRIPT = `
local current = redis.call('HGET', KEYS[1], '${MERGED_FIELD}') or ''
if current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], '${MERGED_FIELD}', ARGV[2])
for i = 3, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
return 1`;

const metricValueSchema = z.looseObject({
  value: z.number().nullable(),
  labels: z.record(z.string(), z.union([z.string(), z.number()])),
  metricName: z.string().optional(),
});
const metricSchema = z.looseObject({
  name: z.string(),
  help: z.string(),
  type: z.string(),
  aggregator: z.string(),
  values: z.array(metricValueSchema),
});
const metricListSchema = z.array(metricSchema);
type MetricList = z.infer<typeof metricListSchema>;
const snapshotSchema = z.tuple([z.array(z.string()), z.array(z.string())]);

/** Parses a registry's JSON (from Redis or from this worker); values that JSON cannot carry (NaN) go. */
function parseMetricList(json: string): MetricList {
  const list = metricListSchema.parse(JSON.parse(json));
  return list.map((metric) => ({ ...metric, values: metric.values.filter((value) => value.value !== null) }));
}

interface ClusterView {
  answers: Map<string, MetricList>;
  missing: string[];
  retiredFields: [string, string][];
}

/** Only what keeps growing over a worker's life makes sense to keep once it is gone. */
function retainable(list: MetricList): MetricList {
  return list.filter((metric) => metric.type === 'counter' || metric.type === 'histogram');
}

function withWorkerLabel(list: MetricList, worker: string): MetricList {
  return list.map((metric) => ({
    ...metric,
    values: metric.values.map((value) => ({ ...value, labels: { ...value.labels, worker } })),
  }));
}

/** HGETALL's flat [field, value, field, value, …] as pairs. */
function pairs(flat: string[]): [string, string][] {
  const result: [string, string][] = [];
  for (let index = 0; index + 1 < flat.length; index += 2) {
    const [field, value] = flat.slice(index, index + 2);
    if (field !== undefined && value !== undefined) result.push([field, value]);
  }
  return result;
}

export function createWorkerId(): string {
  return `${os.hostname()}:${process.pid}:${randomBytes(2).toString('hex')}`;
}

export class ClusterMetrics {
  readonly workerId: string;
  private readonly options: ClusterMetricsOptions;
  private readonly workersKey: string;
  private readonly retiredKey: string;
  private readonly collectChannel: string;
  private readonly answersChannel: string;
  private readonly heartbeatMs: number;
  private readonly heartbeat: (args: string[]) => Promise<unknown>;
  private readonly snapshot: (args: string[]) => Promise<unknown>;
  private readonly compact: (args: string[]) => Promise<unknown>;
  /** Scrapes of this worker waiting for answers: nonce -> workers still to answer. */
  private readonly pending = new Map<string, { waiting: Set<string>; done: () => void }>();
  private timer: NodeJS.Timeout | undefined;
  private retired = false;
  private readonly onCollect = (message: string) => void this.answer(message);
  private readonly onAnswer = (message: string) => this.noteAnswer(message);

  constructor(options: ClusterMetricsOptions) {
    this.options = options;
    this.workerId = createWorkerId();
    const { names, redis } = options;
    this.workersKey = names.key('workers');
    this.retiredKey = names.key('metrics:retired');
    this.collectChannel = `${names.prefix}:metrics:collect`;
    this.answersChannel = `${names.prefix}:metrics:answers`;
    this.heartbeatMs = options.heartbeatMs ?? 2000;
    this.heartbeat = createScriptRunner(redis, HEARTBEAT_SCRIPT);
    this.snapshot = createScriptRunner(redis, SNAPSHOT_SCRIPT);
    this.compact = createScriptRunner(redis, COMPACT_SCRIPT);
  }

  private answersKey(nonce: string): string {
    return this.options.names.key(`metrics:answers:${nonce}`);
  }

  /** Subscribes to scrape requests and registers the worker (before it reports ready). */
  async start(): Promise<void> {
    const { subscriber } = this.options;
    await subscriber.subscribe(this.collectChannel, this.onCollect);
    await subscriber.subscribe(this.answersChannel, this.onAnswer);
    await this.beat();
    this.timer = setInterval(() => {
      this.beat().catch(() => undefined); // Redis away: health reports it; the next beat re-registers
    }, this.heartbeatMs);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    // Offline, node-redis would queue beats and replay them all on reconnect: skip instead.
    if (this.retired || !this.options.redis.isReady) return;
    await this.heartbeat(['1', this.workersKey, this.workerId]);
  }

  /**
   * Graceful stop: leaves this worker's final counters and histograms in the retired hash and leaves the
   * live set in one transaction. Call after the last stream has ended, before Redis closes.
   */
  async retire(): Promise<void> {
    if (this.retired) return;
    this.retired = true;
    clearInterval(this.timer);
    for (const { done } of this.pending.values()) done();
    const { redis, log } = this.options;
    // Offline, node-redis would queue the transaction until Redis returns: past the shutdown deadline.
    if (!redis.isReady) {
      log.warn('redis unavailable at stop; this worker leaves the cluster totals');
      return;
    }
    const final = retainable(await this.localMetrics());
    try {
      await redis
        .multi()
        .hSet(this.retiredKey, this.workerId, JSON.stringify(final))
        .zRem(this.workersKey, this.workerId)
        .exec();
    } catch (error) {
      log.warn({ err: error }, 'could not retire metrics; cluster totals will drop');
    }
    const { subscriber } = this.options;
    if (subscriber.isReady) {
      await Promise.allSettled([
        subscriber.unsubscribe(this.collectChannel, this.onCollect),
        subscriber.unsubscribe(this.answersChannel, this.onAnswer),
      ]);
    }
  }

  private async localMetrics(): Promise<MetricList> {
    return parseMetricList(JSON.stringify(await this.options.registry.getMetricsAsJSON()));
  }

  /** Another worker scrapes: write this worker's metrics under its nonce and tell it. */
  private async answer(message: string): Promise<void> {
    const request = z.object({ nonce: z.uuid(), from: z.string() }).safeParse(safeJson(message));
    if (!request.success || request.data.from === this.workerId) return;
    const { nonce } = request.data;
    try {
      const json = JSON.stringify(await this.options.registry.getMetricsAsJSON());
      const key = this.answersKey(nonce);
      await this.options.redis
        .multi()
        .hSet(key, this.workerId, json)
        .pExpire(key, ANSWERS_TTL_MS)
        .publish(this.answersChannel, `${nonce} ${this.workerId}`)
        .exec();
    } catch (error) {
      this.options.log.warn({ err: error }, 'could not answer a metrics scrape');
    }
  }

  private noteAnswer(message: string): void {
    const [nonce, worker] = message.split(' ');
    if (nonce === undefined || worker === undefined) return;
    const request = this.pending.get(nonce);
    if (!request) return;
    request.waiting.delete(worker);
    if (request.waiting.size === 0) request.done();
  }

  /** Asks the other live workers for their metrics; resolves with who answered, by worker id. */
  private async gather(others: string[]): Promise<Map<string, MetricList>> {
    const answers = new Map<string, MetricList>();
    if (others.length === 0) return answers;
    const { redis, log } = this.options;
    const nonce = randomUUID();
    const waiting = new Set(others);
    let timer: NodeJS.Timeout | undefined;
    const allAnswered = new Promise<void>((resolve) => {
      this.pending.set(nonce, { waiting, done: resolve });
      timer = setTimeout(resolve, this.options.collectTimeoutMs ?? 1000);
    });
    try {
      await redis.publish(this.collectChannel, JSON.stringify({ nonce, from: this.workerId }));
      await allAnswered;
    } finally {
      clearTimeout(timer);
      this.pending.delete(nonce);
    }
    const key = this.answersKey(nonce);
    const [stored] = await redis.multi().hGetAll(key).del(key).exec();
    const expected = new Set(others);
    for (const [worker, json] of Object.entries(z.record(z.string(), z.string()).parse(stored))) {
      if (!expected.has(worker)) continue;
      try {
        answers.set(worker, parseMetricList(json));
      } catch (error) {
        log.warn({ err: error, worker }, 'ignored an unreadable metrics answer');
      }
    }
    return answers;
  }

  /**
   * The rest of the installation: the other live workers' answers, who stayed silent, and what stopped
   * workers left behind (read together with the live set, so no worker is counted twice).
   */
  private async collectCluster(): Promise<ClusterView> {
    const expiryMs = String(this.heartbeatMs * HEARTBEATS_TO_EXPIRY);
    const [workers, retiredFlat] = snapshotSchema.parse(
      await this.snapshot(['2', this.workersKey, this.retiredKey, expiryMs]),
    );
    let retiredFields = pairs(retiredFlat);
    const others = workers.filter((worker) => worker !== this.workerId);
    const answers = await this.gather(others);
    let missing = others.filter((worker) => !answers.has(worker));
    if (missing.length > 0) {
      // A worker that stopped during the scrape has left its final counters in the retired hash.
      const late = await this.options.redis.hmGet(this.retiredKey, missing);
      missing.forEach((worker, index) => {
        const json = late[index];
        if (typeof json !== 'string') return;
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
        view = await withDeadline(this.collectCluster(), (this.options.collectTimeoutMs ?? 1000) + 1000);
        complete = true;
      } catch (error) {
        log.warn({ err: error }, 'cluster metrics unavailable; answering with this worker only');
      }
    }
    const { answers, missing, retiredFields } = view;

    const retired = retiredFields.flatMap(([field, json]) => {
      try {
        return [{ field, json, list: retainable(parseMetricList(json)) }];
      } catch {
        return [];
      }
    });
    if (complete) await this.compactRetired(retired);

    const labelled = scope === 'workers';
    const lists: MetricList[] = [labelled ? withWorkerLabel(local, this.workerId) : local];
    for (const [worker, list] of answers) lists.push(labelled ? withWorkerLabel(list, worker) : list);
    for (const { list } of retired) lists.push(labelled ? withWorkerLabel(list, RETIRED_WORKER) : list);

    const meta = new Registry();
    const workersGauge = new Gauge({
      name: 'pulseboard_cluster_workers',
      help: 'Workers in this scrape: answered (included) and missing (registered but silent, not included)',
      labelNames: ['state'],
      registers: [meta],
    });
    workersGauge.set({ state: 'answered' }, 1 + answers.size);
    workersGauge.set({ state: 'missing' }, missing.length);
    new Gauge({
      name: 'pulseboard_cluster_scrape_complete',
      help: '1 when every live worker answered this scrape, 0 when some did not or Redis was unreachable',
      registers: [meta],
    }).set(complete && missing.length === 0 ? 1 : 0);

    const aggregated = AggregatorRegistry.aggregate(lists);
    const text = (await aggregated.metrics()) + (await meta.metrics());
    return { contentType: aggregated.contentType, text, answered: 1 + answers.size, missing };
  }

  /** Folds stopped workers' entries into one, so the retired hash stays small however often you deploy. */
  private async compactRetired(retired: { field: string; json: string; list: MetricList }[]): Promise<void> {
    const merged = retired.find((entry) => entry.field === MERGED_FIELD);
    const folded = retired.filter((entry) => entry.field !== MERGED_FIELD);
    if (folded.length === 0) return;
    try {
      const combined = await AggregatorRegistry.aggregate(
        retired.map((entry) => entry.list),
      ).getMetricsAsJSON();
      await this.compact([
        '1',
        this.retiredKey,
        merged?.json ?? '',
        JSON.stringify(combined),
        ...folded.map((entry) => entry.field),
      ]);
    } catch (error) {
      this.options.log.warn({ err: error }, 'could not compact retired metrics; will retry next scrape');
    }
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

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
