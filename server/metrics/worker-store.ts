// The installation's workers in Redis (docs/design.md, "Health, metrics, logs"):
// - the live set `{prefix}:workers`, a sorted set scored by the Redis time of each worker's last beat;
// - the retired hash `{prefix}:metrics:retired`, where a worker that stops gracefully (reload, deploy)
//   leaves its final counters and histograms, so cluster totals do not fall at every `pm2 reload`.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { AggregatorRegistry } from 'prom-client';
import * as z from 'zod';
import type { RedisNames } from '../../shared/keys.ts';
import { createScriptRunner } from '../../shared/publisher.ts';
import type { Logger } from '../log.ts';
import type { RedisClient } from '../redis.ts';
import { parseMetricList, retainable, type MetricList } from './metric-list.ts';

/** A worker missing this many heartbeats is considered gone. */
export const HEARTBEATS_TO_EXPIRY = 3;
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

const snapshotSchema = z.tuple([z.array(z.string()), z.array(z.string())]);

/** One field of the retired hash: a stopped worker's final metrics, or the merge of earlier ones. */
export interface RetiredEntry {
  field: string;
  json: string;
  list: MetricList;
}

export function createWorkerId(): string {
  return `${os.hostname()}:${process.pid}:${randomBytes(2).toString('hex')}`;
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

/** The retired hash's fields that parse, with what is retainable of them; an unreadable field is skipped. */
export function parseRetired(fields: [string, string][]): RetiredEntry[] {
  return fields.flatMap(([field, json]) => {
    try {
      return [{ field, json, list: retainable(parseMetricList(json)) }];
    } catch {
      return [];
    }
  });
}

export class WorkerStore {
  private readonly redis: RedisClient;
  private readonly log: Logger;
  private readonly workersKey: string;
  private readonly retiredKey: string;
  private readonly heartbeat: (args: string[]) => Promise<unknown>;
  private readonly snapshot: (args: string[]) => Promise<unknown>;
  private readonly compact: (args: string[]) => Promise<unknown>;

  constructor(options: { redis: RedisClient; names: RedisNames; log: Logger }) {
    const { redis, names } = options;
    this.redis = redis;
    this.log = options.log;
    this.workersKey = names.key('workers');
    this.retiredKey = names.key('metrics:retired');
    this.heartbeat = createScriptRunner(redis, HEARTBEAT_SCRIPT);
    this.snapshot = createScriptRunner(redis, SNAPSHOT_SCRIPT);
    this.compact = createScriptRunner(redis, COMPACT_SCRIPT);
  }

  /** Marks the worker live now. */
  async beat(workerId: string): Promise<void> {
    await this.heartbeat(['1', this.workersKey, workerId]);
  }

  /**
   * Drops the workers silent for `expiryMs`, then reads the live ones and the retired hash's fields in the
   * same step, so no worker is counted twice.
   */
  async read(expiryMs: number): Promise<{ workers: string[]; retiredFields: [string, string][] }> {
    const [workers, retiredFlat] = snapshotSchema.parse(
      await this.snapshot(['2', this.workersKey, this.retiredKey, String(expiryMs)]),
    );
    return { workers, retiredFields: pairs(retiredFlat) };
  }

  /** The retired entries of these workers, in their order (undefined where a worker has none). */
  async retiredOf(workers: string[]): Promise<(string | undefined)[]> {
    const found = await this.redis.hmGet(this.retiredKey, workers);
    return found.map((json) => (typeof json === 'string' ? json : undefined));
  }

  /** Leaves the worker's final metrics in the retired hash and the live set, in one transaction. */
  async retire(workerId: string, final: MetricList): Promise<void> {
    try {
      await this.redis
        .multi()
        .hSet(this.retiredKey, workerId, JSON.stringify(final))
        .zRem(this.workersKey, workerId)
        .exec();
    } catch (error) {
      this.log.warn({ err: error }, 'could not retire metrics; cluster totals will drop');
    }
  }

  /** Folds stopped workers' entries into one, so the retired hash stays small however often you deploy. */
  async compactRetired(retired: RetiredEntry[]): Promise<void> {
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
      this.log.warn({ err: error }, 'could not compact retired metrics; will retry next scrape');
    }
  }
}
