// Long history and annotations (docs/events.md, "History and annotations"): a Lua snippet of local
// functions that the sequencing script (shared/sequence-script.ts) includes in its body and calls for every
// metric point and every log event, so the downsampled history and the annotations are written in the same
// atomic step as the log entry and can never disagree with the live stream.
//
// A metric series keeps two rings of buckets, one Redis string each (docs/design.md, "Redis keys"):
// `<tag>:h:1m:<name>` (1-minute buckets, 24 hours) and `<tag>:h:10m:<name>` (10-minute buckets, 7 days).
// A bucket is a fixed-size record of 7 little-endian doubles: start (epoch ms), min, max, sum, count, last
// value and the ts of that last value. Bucket `start / span` lives in slot `(start / span) % slots`, so a
// ring never holds more than `slots` buckets whatever the rate or the backfill: a point whose slot already
// holds a newer bucket is older than the ring keeps and is left out of history (it is still logged and
// streamed). A ring is allocated at its full size when its series gets its first point (one exact
// allocation, never regrown), so the memory per series is fixed: see docs/events.md for the figure.
//
// A log event with `annotate: true` is also kept in `<tag>:annotations`, a sorted set of envelopes by ts,
// capped at ANNOTATIONS_MAX and at ANNOTATIONS_KEEP_MS behind the sequencing time.

/** One level of downsampled history. */
export interface HistoryLevel {
  /** Bucket width in ms. */
  spanMs: number;
  /** Buckets kept (the ring's size). */
  slots: number;
  /** Key suffix after the board's tag: `<tag><suffix><metric name>`. */
  suffix: string;
}

export const HISTORY_MINUTE: HistoryLevel = { spanMs: 60_000, slots: 1440, suffix: ':h:1m:' };
export const HISTORY_TEN_MINUTES: HistoryLevel = { spanMs: 600_000, slots: 1008, suffix: ':h:10m:' };
export const HISTORY_LEVELS = [HISTORY_MINUTE, HISTORY_TEN_MINUTES] as const;

/** Bytes of one bucket record: 7 doubles. */
export const HISTORY_RECORD_BYTES = 56;
/** Annotations kept per board (newest by ts win). */
export const ANNOTATIONS_MAX = 1000;
/** Annotations older than this behind the sequencing time are dropped (7 days and a day of slack). */
export const ANNOTATIONS_KEEP_MS = 8 * 24 * 3_600_000;
/** Key suffix of a board's annotations, after its tag. */
export const ANNOTATIONS_SUFFIX = ':annotations';

const levelsLua = HISTORY_LEVELS.map(
  (level) => `{ span = ${level.spanMs}, slots = ${level.slots}, suffix = '${level.suffix}' }`,
).join(', ');

/**
 * Local functions for the sequencing script's body:
 * - `recordMetricHistory(tag, name, ts, body)`: folds a point (value from its JSON body) into its buckets;
 * - `recordAnnotation(tag, ts, body, envelope, now)`: keeps an `annotate: true` log event's envelope.
 * `ts` is the event's ts as text (already defaulted to the sequencing time).
 */
export const HISTORY_LUA = `
local historyLevels = { ${levelsLua} }
local historyRecord = ${HISTORY_RECORD_BYTES}

local function recordMetricHistory(tag, name, ts, body)
  local ok, decoded = pcall(cjson.decode, body)
  if not ok or type(decoded) ~= 'table' then return end
  local value = tonumber(decoded.value)
  local at = tonumber(ts)
  if not value or not at then return end
  for _, level in ipairs(historyLevels) do
    local key = tag .. level.suffix .. name
    local index = math.floor(at / level.span)
    local start = index * level.span
    local offset = (index % level.slots) * historyRecord
    local raw = redis.call('GETRANGE', key, offset, offset + historyRecord - 1)
    if raw == '' then
      redis.call('SETRANGE', key, level.slots * historyRecord - 1, '\\0')
    end
    local s, low, high, sum, count, last, lastTs = 0, 0, 0, 0, 0, 0, 0
    if #raw == historyRecord then s, low, high, sum, count, last, lastTs = struct.unpack('<ddddddd', raw) end
    local record
    if count > 0 and s == start then
      if at >= lastTs then last, lastTs = value, at end
      record = struct.pack('<ddddddd', start, math.min(low, value), math.max(high, value), sum + value,
        count + 1, last, lastTs)
    elseif count == 0 or s < start then
      record = struct.pack('<ddddddd', start, value, value, value, 1, value, at)
    end
    if record then redis.call('SETRANGE', key, offset, record) end
  end
end

local function recordAnnotation(tag, ts, body, envelope, now)
  if not string.find(body, '"annotate":true', 1, true) then return end
  local ok, decoded = pcall(cjson.decode, body)
  if not ok or type(decoded) ~= 'table' or decoded.annotate ~= true then return end
  local key = tag .. '${ANNOTATIONS_SUFFIX}'
  redis.call('ZADD', key, ts, envelope)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. string.format('%.0f', now - ${ANNOTATIONS_KEEP_MS}))
  redis.call('ZREMRANGEBYRANK', key, 0, -${ANNOTATIONS_MAX + 1})
end
`;
