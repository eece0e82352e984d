// `GET /api/snapshot?board=` (docs/design.md, "Snapshot"): one board's statuses, recent metric windows,
// recent log events and the id of the newest entry in its log, read by one read-only Lua script so they
// are consistent with each other (the sequencing script updates them in the same atomic step as the
// XADD). A client renders it, then opens the stream from that id for that board and misses nothing.
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Context } from 'koa';
import type { Snapshot } from '../../shared/api.ts';
import {
  parseEnvelope,
  type Envelope,
  type LogEventEnvelope,
  type MetricEnvelope,
  type StatusEnvelope,
} from '../../shared/events.ts';
import { DEFAULT_BOARD } from '../../shared/boards.ts';
import { boardKeys, type RedisNames } from '../../shared/keys.ts';
import { createScriptRunner, type RedisCommandSender } from '../../shared/publisher.ts';
import type { BoardRegistry } from '../auth/boards.ts';
import { boardParam, boardUserOf, requireBoardAccess } from './boards.ts';

const gzipAsync = promisify(gzip);

/** Metric points older than this (by `ts`, against Redis' clock) are left out of the snapshot. */
export const SNAPSHOT_WINDOW_MS = 15 * 60 * 1000;
/** Most recently updated metric series included; a snapshot must stay a few MB at most. */
export const SNAPSHOT_MAX_SERIES = 200;
/** Log events included (the list the sequencing script keeps holds as many). */
export const SNAPSHOT_MAX_EVENTS = 200;

// KEYS: 1 log, 2 status hash, 3 metric index, 4 recent events list.
// ARGV: 1 metric series key prefix, 2 window ms, 3 points per series, 4 series, 5 events.
// Reply: { last log id, Redis time ms, status envelopes, { name, { point envelopes } }..., event envelopes }.
// A point's ts is read from the envelope's text (`{"id":"…","board":"…","ts":N,`), which the sequencing
// script writes (`{"id":"…","ts":N,` for points stored before boards).
const SNAPSHOT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local from = now - tonumber(ARGV[2])
local maxPoints = tonumber(ARGV[3])
local names = redis.call('ZRANGE', KEYS[3], '+inf', from, 'BYSCORE', 'REV', 'LIMIT', 0, ARGV[4])
local metrics = {}
for _, name in ipairs(names) do
  local recent = {}
  for _, point in ipairs(redis.call('LRANGE', ARGV[1] .. name, -maxPoints, -1)) do
    local ts = tonumber(string.match(point, '^{"id":"[0-9-]+","board":"[a-z0-9-]+","ts":([0-9]+)')
      or string.match(point, '^{"id":"[0-9-]+","ts":([0-9]+)'))
    if ts and ts >= from then recent[#recent + 1] = point end
  end
  metrics[#metrics + 1] = { name, recent }
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local lastId = '0-0'
if last[1] then lastId = last[1][1] end
return {
  lastId,
  string.format('%.0f', now),
  redis.call('HVALS', KEYS[2]),
  metrics,
  redis.call('LRANGE', KEYS[4], -tonumber(ARGV[5]), -1),
}
`;

export interface SnapshotOptions {
  redis: RedisCommandSender;
  names: RedisNames;
  /** Points per metric series at most (METRIC_HISTORY_MAX). */
  metricHistoryMax: number;
  /**
   * How long a worker reuses a snapshot, in ms; 0 disables. Default 250. A reused snapshot is still exact
   * as of its `lastEventId`, and the stream from that id delivers the rest, so age costs nothing but a
   * slightly longer replay. (Dropping it whenever a newer event arrives was measured: under live traffic it
   * then never hits, see docs/events.md.)
   */
  cacheMs?: number;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/** Parses stored envelopes; whatever else sits in these keys is skipped, never sent on (defence in depth). */
function envelopes(raws: string[]): Envelope[] {
  const out: Envelope[] = [];
  for (const raw of raws) {
    const parsed = parseEnvelope(raw);
    if (parsed.ok) out.push(parsed.value);
  }
  return out;
}

const isStatus = (event: Envelope): event is StatusEnvelope => event.type === 'status';
const isMetric = (event: Envelope): event is MetricEnvelope => event.type === 'metric';
const isLogEvent = (event: Envelope): event is LogEventEnvelope => event.type === 'event';

/** Decodes the script's reply into the `snapshotSchema` shape (shared/api.ts). */
function toSnapshot(board: string, reply: unknown): Snapshot {
  if (!Array.isArray(reply) || reply.length !== 5) throw new Error('snapshot script: unexpected reply');
  const [lastEventId, serverTime, statuses, series, events] = reply;
  if (typeof lastEventId !== 'string' || typeof serverTime !== 'string')
    throw new Error('snapshot script: unexpected reply');
  // A list, never an object keyed by metric name: `__proto__` is a valid name (docs/security.md, "Hardening").
  const metrics: Snapshot['metrics'] = [];
  for (const entry of Array.isArray(series) ? series : []) {
    if (!Array.isArray(entry) || typeof entry[0] !== 'string') continue;
    const points = envelopes(strings(entry[1])).filter(isMetric);
    if (points.length > 0) metrics.push({ name: entry[0], points });
  }
  return {
    board,
    statuses: envelopes(strings(statuses))
      .filter(isStatus)
      .sort((a, b) => a.service.localeCompare(b.service)),
    metrics,
    events: envelopes(strings(events)).filter(isLogEvent),
    lastEventId,
    serverTime: Number(serverTime),
  };
}

/** Reads one board's snapshot (default `main`). */
export type SnapshotReader = (board?: string) => Promise<Snapshot>;

/**
 * Reads snapshots of one board at a time; concurrent callers for a board share one read, and each read
 * is reused for `cacheMs`.
 */
export function createSnapshotReader(options: SnapshotOptions): SnapshotReader {
  const { names } = options;
  const cacheMs = options.cacheMs ?? 250;
  const run = createScriptRunner(options.redis, SNAPSHOT_SCRIPT);
  const args = (metricPrefix: string) => [
    metricPrefix,
    String(SNAPSHOT_WINDOW_MS),
    String(options.metricHistoryMax),
    String(SNAPSHOT_MAX_SERIES),
    String(SNAPSHOT_MAX_EVENTS),
  ];
  interface BoardCache {
    cached?: { snapshot: Snapshot; readAt: number };
    inFlight?: Promise<Snapshot> | undefined;
  }
  // Bounded by the boards that exist: callers check the board before reading it.
  const byBoard = new Map<string, BoardCache>();

  return async function readSnapshot(board = DEFAULT_BOARD): Promise<Snapshot> {
    let state = byBoard.get(board);
    if (!state) byBoard.set(board, (state = {}));
    const { cached } = state;
    if (cached && Date.now() - cached.readAt < cacheMs) return cached.snapshot;
    const keys = boardKeys(names.prefix, board);
    const current = state;
    current.inFlight ??= run([
      '4',
      keys.log,
      keys.status,
      keys.metricIndex,
      keys.recentEvents,
      ...args(keys.metricPrefix),
    ])
      .then((reply) => {
        const snapshot = toSnapshot(board, reply);
        if (cacheMs > 0) current.cached = { snapshot, readAt: Date.now() };
        return snapshot;
      })
      .finally(() => {
        current.inFlight = undefined;
      });
    return current.inFlight;
  };
}

/** A snapshot's answer bodies, made once per snapshot read and shared by every request it serves. */
interface SnapshotBytes {
  json: Buffer;
  gzip: Promise<Buffer>;
}

/** Below this the plain JSON goes out as is (the same threshold as the app's compress middleware). */
const GZIP_MIN_BYTES = 1024;

/**
 * Serializes and compresses each snapshot once: a cached snapshot served to many clients used to be
 * stringified and gzipped again for every request (0.12 s of CPU each at 2.4 MB; docs/security.md).
 */
function snapshotBytes(cache: WeakMap<Snapshot, SnapshotBytes>, snapshot: Snapshot): SnapshotBytes {
  let bytes = cache.get(snapshot);
  if (!bytes) {
    const json = Buffer.from(JSON.stringify(snapshot));
    bytes = { json, gzip: gzipAsync(json) };
    bytes.gzip.catch(() => undefined); // a failure is seen by the request awaiting it
    cache.set(snapshot, bytes);
  }
  return bytes;
}

export interface SnapshotRouteOptions extends SnapshotOptions {
  /** Which boards exist and who may see them. */
  registry: BoardRegistry;
}

/** `GET /api/snapshot?board=<board>` (default `main`): 400 bad name, 403 not visible, 404 (admins) unknown. */
export function snapshotRoute(options: SnapshotRouteOptions) {
  const readSnapshot = createSnapshotReader(options);
  const cache = new WeakMap<Snapshot, SnapshotBytes>();
  return async function getSnapshot(ctx: Context): Promise<void> {
    const board = boardParam(ctx.query.board);
    await requireBoardAccess(options.registry, boardUserOf(ctx), board);
    const bytes = snapshotBytes(cache, await readSnapshot(board));
    // Per-user data that is stale within a second: no shared or browser caching.
    ctx.set('Cache-Control', 'no-store');
    ctx.vary('Accept-Encoding');
    ctx.type = 'application/json';
    // The bytes are ready-made: koa-compress must not compress them again.
    ctx.compress = false;
    if (bytes.json.length >= GZIP_MIN_BYTES && ctx.acceptsEncodings('gzip', 'identity') === 'gzip') {
      ctx.set('Content-Encoding', 'gzip');
      ctx.body = await bytes.gzip;
      return;
    }
    ctx.body = bytes.json;
  };
}
