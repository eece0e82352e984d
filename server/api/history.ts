// `GET /api/history?board=&range=[&metric=]` (docs/dashboard.md, "Ranges and history"): a metric's
// downsampled buckets for a range and the board's annotations in it, read by one read-only Lua script
// together with the id of the newest entry in the board's log. The sequencing script writes buckets and
// annotations in the same atomic step as the log entry (shared/history-script.ts), so the answer includes
// exactly the events up to `lastEventId`: the chart extends it with the stream's events after that id,
// without a gap or a duplicate.
import type { Context } from 'koa';
import { boardKeys, type RedisNames } from '../../shared/keys.ts';
import { parseEnvelope, nameSchema, type LogEventEnvelope } from '../../shared/events.ts';
import {
  chartRangeSchema,
  DEFAULT_CHART_RANGE,
  levelOf,
  RANGE_MS,
  type BucketColumns,
  type ChartRange,
  type HistoryResponse,
} from '../../shared/history.ts';
import { ANNOTATIONS_MAX, HISTORY_RECORD_BYTES } from '../../shared/history-script.ts';
import { createScriptRunner, type RedisCommandSender } from '../../shared/publisher.ts';
import type { BoardRegistry } from '../auth/boards.ts';
import { ValidationError } from '../http/errors.ts';
import { boardParam, boardUserOf, requireBoardAccess } from './boards.ts';

// KEYS: 1 log, 2 annotations, 3 the metric's ring (absent: annotations only).
// ARGV: 1 range ms, 2 bucket span ms, 3 annotations at most.
// Reply: { last log id, Redis time ms, { "start min max sum count last" per bucket in the range }, annotations }.
const HISTORY_READ_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local from = now - tonumber(ARGV[1])
local span = tonumber(ARGV[2])
local buckets = {}
if KEYS[3] then
  local raw = redis.call('GET', KEYS[3])
  if raw then
    for offset = 1, #raw - ${HISTORY_RECORD_BYTES} + 1, ${HISTORY_RECORD_BYTES} do
      local s, low, high, sum, count, last = struct.unpack('<dddddd', raw, offset)
      if count > 0 and s + span > from then
        buckets[#buckets + 1] = string.format('%.17g %.17g %.17g %.17g %.17g %.17g', s, low, high, sum, count, last)
      end
    end
  end
end
local lastEntry = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local lastId = '0-0'
if lastEntry[1] then lastId = lastEntry[1][1] end
local annotations = redis.call('ZRANGE', KEYS[2], string.format('%.0f', from), '+inf', 'BYSCORE', 'LIMIT', 0, ARGV[3])
return { lastId, string.format('%.0f', now), buckets, annotations }
`;

export interface HistoryReadOptions {
  redis: RedisCommandSender;
  names: RedisNames;
}

export interface HistoryQuery {
  board: string;
  range: ChartRange;
  /** Absent: annotations only. */
  metric?: string | undefined;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/** Buckets from the script's text records, sorted by start (a ring wraps). */
function toColumns(records: string[]): BucketColumns {
  const rows = records
    .map((record) => record.split(' ').map(Number))
    .filter((row) => row.length === 6 && row.every(Number.isFinite))
    .sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0));
  const column = (index: number) => rows.map((row) => row[index] ?? 0);
  return {
    start: column(0),
    min: column(1),
    max: column(2),
    sum: column(3),
    count: column(4),
    last: column(5),
  };
}

function annotationsOf(raws: string[]): LogEventEnvelope[] {
  const out: LogEventEnvelope[] = [];
  for (const raw of raws) {
    const parsed = parseEnvelope(raw);
    if (parsed.ok && parsed.value.type === 'event') out.push(parsed.value);
  }
  return out;
}

/** Reads one board's history for a range (and a metric's buckets when named). */
export function createHistoryReader(options: HistoryReadOptions) {
  const run = createScriptRunner(options.redis, HISTORY_READ_SCRIPT);
  return async function readHistory(query: HistoryQuery): Promise<HistoryResponse> {
    const keys = boardKeys(options.names.prefix, query.board);
    const level = levelOf(query.range);
    const ring = query.metric === undefined ? [] : [`${keys.tag}${level.suffix}${query.metric}`];
    const reply = await run([
      String(2 + ring.length),
      keys.log,
      keys.annotations,
      ...ring,
      String(RANGE_MS[query.range]),
      String(level.spanMs),
      String(ANNOTATIONS_MAX),
    ]);
    if (!Array.isArray(reply) || reply.length !== 4) throw new Error('history script: unexpected reply');
    const [lastEventId, serverTime, buckets, annotations] = reply;
    if (typeof lastEventId !== 'string' || typeof serverTime !== 'string') {
      throw new Error('history script: unexpected reply');
    }
    return {
      board: query.board,
      metric: query.metric ?? null,
      range: query.range,
      bucketMs: level.spanMs,
      serverTime: Number(serverTime),
      lastEventId,
      buckets: toColumns(strings(buckets)),
      annotations: annotationsOf(strings(annotations)),
    };
  };
}

export interface HistoryRouteOptions extends HistoryReadOptions {
  /** Which boards exist and who may see them. */
  registry: BoardRegistry;
}

function rangeParam(raw: unknown): ChartRange {
  if (raw === undefined) return DEFAULT_CHART_RANGE;
  const parsed = chartRangeSchema.safeParse(raw);
  if (!parsed.success) throw new ValidationError('range: must be one of 15m, 1h, 6h, 24h, 7d', 'range');
  return parsed.data;
}

function metricParam(raw: unknown): string | undefined {
  if (raw === undefined) return undefined;
  const parsed = nameSchema.safeParse(raw);
  if (!parsed.success) throw new ValidationError('metric: must be a metric name', 'metric');
  return parsed.data;
}

/**
 * `GET /api/history?board=<board>&range=<15m|1h|6h|24h|7d>[&metric=<name>]`: 400 bad parameter, 403 board
 * not visible, 404 (admins) unknown board, as the snapshot.
 */
export function historyRoute(options: HistoryRouteOptions) {
  const readHistory = createHistoryReader(options);
  return async function getHistory(ctx: Context): Promise<void> {
    const board = boardParam(ctx.query.board);
    const range = rangeParam(ctx.query.range);
    const metric = metricParam(ctx.query.metric);
    await requireBoardAccess(options.registry, boardUserOf(ctx), board);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await readHistory({ board, range, metric });
  };
}
