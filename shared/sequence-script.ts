// The sequencing scripts (docs/events.md, "How events are sequenced and kept"): one atomic step that gives
// an event its global id (XADD to the log), updates the current state and publishes the envelope to every
// worker. Three entry points share one Lua body:
// - SEQUENCE_SCRIPT: the publisher (CLI, `POST /api/publish`, TypeScript scripts);
// - RAW_INGEST_SCRIPT: raw `PUBLISH` input, deduplicated by position in the ingest channel;
// - DURABLE_INGEST_SCRIPT: entries of the durable input stream, sequenced and acknowledged in one step.
//
// Common KEYS: 1 log stream, 2 status hash, 3 metric index, 4 list of recent log events (`type: 'event'`).
// Common ARGV: 1 history max, 2 metric points kept per series, 3 log events kept, 4 events channel,
//   5 metric series key prefix, 6 how far (ms) a `ts` may be ahead of Redis' clock.
// An event is 4 ARGV: kind, service|name, ts ('' = now), body (the event as JSON without `ts`).
// Metric series keys are built from ARGV 5; they carry the same hash tag as KEYS. Keys that hold dedupe
// state (a position, the durable stream) are passed as KEYS, so a future per-board hash tag can move them.
// The envelope is spliced as text rather than re-encoded with cjson, which would round numbers to 14
// significant digits.
// Current state is ordered by min(ts, sequencing time) (docs/events.md, "Timestamps"): a publisher's clock
// can date an event in the past (backfill) but never ahead of Redis' clock, so a future-dated status
// cannot pin a tile and a future-dated series cannot push real ones out of the snapshot.
import type { RedisNames } from './keys.ts';

/** The capped list of the most recent `event` envelopes, read by the snapshot. */
export function recentEventsKey(names: RedisNames): string {
  return names.key('events');
}

/** Number of ARGV per event in every script. */
export const ARGS_PER_EVENT = 4;
/** Number of common ARGV before each script's own. */
export const COMMON_ARGS = 6;

/** Reply code of a message or entry whose `ts` is too far ahead (or is not epoch milliseconds). */
export const TS_REJECTED = -1;
/** Reply code of a durable entry no longer pending for this consumer (another one sequenced it). */
export const NOT_OWNED = -2;
/** Prefix of the error the publisher's script raises for a bad `ts`: `PULSEBOARD_TS <event index> <now ms>`. */
export const TS_ERROR_PREFIX = 'PULSEBOARD_TS';

const SEQUENCE_LIB = `
local historyMax = ARGV[1]
local metricMax = tonumber(ARGV[2])
local eventsMax = tonumber(ARGV[3])
local maxFuture = tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowText = string.format('%.0f', now)

-- Whether the events at ARGV[first .. first + 4n - 1] all have a usable ts.
local function tsAllowed(first, n)
  for i = first, first + (n - 1) * 4, 4 do
    local ts = ARGV[i + 2]
    if ts ~= '' and tonumber(ts) > now + maxFuture then return false end
  end
  return true
end

local function orderOf(ts) return math.min(tonumber(ts), now) end

local function sequenceOne(i)
  local kind, key, ts, body = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if ts == '' then ts = nowText end
  local entry = '{"ts":' .. ts .. ',' .. string.sub(body, 2)
  local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', historyMax, '*', 'e', entry)
  local envelope = '{"id":"' .. id .. '",' .. string.sub(entry, 2)
  if kind == 'status' then
    local current = redis.call('HGET', KEYS[2], key)
    local keep = true
    if current then
      local ok, decoded = pcall(cjson.decode, current)
      if ok and type(decoded) == 'table' and tonumber(decoded.ts) and type(decoded.id) == 'string' then
        local sequencedAt = tonumber(string.match(decoded.id, '^(%d+)-')) or now
        if math.min(tonumber(decoded.ts), sequencedAt) > orderOf(ts) then keep = false end
      end
    end
    if keep then redis.call('HSET', KEYS[2], key, envelope) end
  elseif kind == 'metric' then
    local series = ARGV[5] .. key
    redis.call('RPUSH', series, envelope)
    redis.call('LTRIM', series, -metricMax, -1)
    redis.call('ZADD', KEYS[3], 'GT', string.format('%.0f', orderOf(ts)), key)
  elseif kind == 'event' then
    redis.call('RPUSH', KEYS[4], envelope)
    redis.call('LTRIM', KEYS[4], -eventsMax, -1)
  end
  redis.call('PUBLISH', ARGV[4], envelope)
  return id
end
`;

/** Publisher: ARGV 7.. are events. Returns their ids, or an error naming the first event with a bad ts. */
export const SEQUENCE_SCRIPT = `${SEQUENCE_LIB}
local first = ${COMMON_ARGS + 1}
local n = (#ARGV - first + 1) / 4
for k = 0, n - 1 do
  if not tsAllowed(first + k * 4, 1) then
    return redis.error_reply('${TS_ERROR_PREFIX} ' .. k .. ' ' .. nowText)
  end
end
local ids = {}
for i = first, #ARGV, 4 do ids[#ids + 1] = sequenceOne(i) end
return ids
`;

/**
 * Raw ingest (docs/events.md, "Raw PUBLISH: exactly once"). KEYS 5: the position key of a marker, holding
 * the highest index sequenced (-1: none yet). ARGV 7: index of the first message, 8: position key TTL ms,
 * then per message: its number of events n (0 = invalid, still occupies its index), then n events.
 * Indexes up to the stored one are skipped (another worker sequenced them); the rest are sequenced.
 * Reply: {'ok', skipped, r...} with r per message after the skipped ones (events sequenced, or TS_REJECTED),
 * {'unknown'} when the marker expired or was never registered, {'gap', h} when messages before firstIndex
 * were never sequenced (this worker's count cannot be trusted).
 */
export const RAW_INGEST_SCRIPT = `${SEQUENCE_LIB}
local stored = redis.call('GET', KEYS[5])
if not stored then return {'unknown'} end
local h = tonumber(stored)
local index = tonumber(ARGV[7])
if index > h + 1 then return {'gap', stored} end
local reply = {'ok', 0}
local i = 9
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  if index <= h then
    reply[2] = reply[2] + 1
  elseif n == 0 then
    reply[#reply + 1] = 0
  elseif not tsAllowed(i + 1, n) then
    reply[#reply + 1] = ${TS_REJECTED}
  else
    for j = i + 1, i + n * 4, 4 do sequenceOne(j) end
    reply[#reply + 1] = n
  end
  index = index + 1
  i = i + 1 + n * 4
end
if index - 1 > h then redis.call('SET', KEYS[5], index - 1, 'PX', ARGV[8]) else redis.call('PEXPIRE', KEYS[5], ARGV[8]) end
return reply
`;

/**
 * Durable ingest (docs/events.md, "Durable input"). KEYS 5: the input stream. ARGV 7: consumer group,
 * 8: this consumer, then per entry: entry id, n (0 = invalid: acknowledged, not sequenced), n events.
 * An entry is handled only while it is still pending for this consumer: one that another consumer claimed
 * (because this one looked dead) is left to it. Handled entries are acknowledged and deleted, so XLEN is
 * the backlog. Reply per entry: events sequenced, TS_REJECTED or NOT_OWNED.
 */
export const DURABLE_INGEST_SCRIPT = `${SEQUENCE_LIB}
local reply = {}
local i = 9
while i <= #ARGV do
  local entryId, n = ARGV[i], tonumber(ARGV[i + 1])
  local pending = redis.call('XPENDING', KEYS[5], ARGV[7], entryId, entryId, 1, ARGV[8])
  if #pending == 0 then
    reply[#reply + 1] = ${NOT_OWNED}
  else
    if n > 0 and not tsAllowed(i + 2, n) then
      reply[#reply + 1] = ${TS_REJECTED}
    else
      for j = i + 2, i + 1 + n * 4, 4 do sequenceOne(j) end
      reply[#reply + 1] = n
    end
    redis.call('XACK', KEYS[5], ARGV[7], entryId)
    redis.call('XDEL', KEYS[5], entryId)
  end
  i = i + 2 + n * 4
end
return reply
`;
