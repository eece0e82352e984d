// The sequencing scripts (docs/events.md, "How events are sequenced and kept"): one atomic step that gives
// an event its id in its board's log (XADD), updates the board's current state and publishes the envelope
// to every worker. Three entry points share one Lua body:
// - SEQUENCE_SCRIPT: the publisher (CLI, `POST /api/publish`, TypeScript scripts);
// - RAW_INGEST_SCRIPT: raw `PUBLISH` input, deduplicated by position in the ingest channel;
// - DURABLE_INGEST_SCRIPT: entries of the durable input stream, sequenced and acknowledged in one step.
//
// KEYS: only each script's dedupe state (a raw-ingest position, the durable stream); none for the publisher.
// Common ARGV: 1 history max, 2 metric points kept per series, 3 log events kept, 4 events channel,
//   5 installation prefix, 6 how far (ms) a `ts` may be ahead of Redis' clock.
// An event is 5 ARGV: board, kind, service|name, ts ('' = now), body (the event as JSON without `ts` and
// `board`). A board's keys are built from ARGV 5 by the rule of `boardTag` (shared/keys.ts; a test checks
// both agree): `{<prefix>}` for `main`, `{<prefix>:<board>}` for any other board (docs/design.md, "Redis
// keys"). A board other than `main` must exist (its meta hash), else the event is refused.
// The envelope is spliced as text rather than re-encoded with cjson, which would round numbers to 14
// significant digits: `{"id":"…","board":"…","ts":…,…}` (the log entry is the same without the id).
// Current state is ordered by min(ts, sequencing time) (docs/events.md, "Timestamps"): a publisher's clock
// can date an event in the past (backfill) but never ahead of Redis' clock, so a future-dated status
// cannot pin a tile and a future-dated series cannot push real ones out of the snapshot.
import { HISTORY_LUA } from './history-script.ts';
import { boardKeys, type RedisNames } from './keys.ts';

/** The capped list of the most recent `event` envelopes of `main`, read by the snapshot. */
export function recentEventsKey(names: RedisNames): string {
  return boardKeys(names.prefix, 'main').recentEvents;
}

/** Number of ARGV per event in every script. */
export const ARGS_PER_EVENT = 5;
/** Number of common ARGV before each script's own. */
export const COMMON_ARGS = 6;

/** Reply code of a message or entry whose `ts` is too far ahead (or is not epoch milliseconds). */
export const TS_REJECTED = -1;
/** Reply code of a durable entry no longer pending for this consumer (another one sequenced it). */
export const NOT_OWNED = -2;
/** Reply code of a message or entry naming a board that does not exist (nothing of it written). */
export const UNKNOWN_BOARD = -3;
/** Prefix of the error the publisher's script raises for a bad `ts`: `PULSEBOARD_TS <event index> <now ms>`. */
export const TS_ERROR_PREFIX = 'PULSEBOARD_TS';
/** Prefix of the error the publisher's script raises for an unknown board: `PULSEBOARD_BOARD <event index> <board>`. */
export const BOARD_ERROR_PREFIX = 'PULSEBOARD_BOARD';

const SEQUENCE_LIB = `
local historyMax = ARGV[1]
local metricMax = tonumber(ARGV[2])
local eventsMax = tonumber(ARGV[3])
local prefix = ARGV[5]
local maxFuture = tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowText = string.format('%.0f', now)

-- The hash tag of a board's keys: the rule of boardTag in shared/keys.ts.
local function tagOf(board)
  if board == 'main' then return '{' .. prefix .. '}' end
  return '{' .. prefix .. ':' .. board .. '}'
end

local known = { main = true }
local function boardExists(board)
  if known[board] == nil then known[board] = redis.call('EXISTS', tagOf(board) .. ':board') == 1 end
  return known[board]
end

-- The index (0-based) of the first event at ARGV[first .. first + 5n - 1] with an unusable ts, or nil.
local function badTs(first, n)
  for k = 0, n - 1 do
    local ts = ARGV[first + k * 5 + 3]
    if ts ~= '' and tonumber(ts) > now + maxFuture then return k end
  end
  return nil
end

-- The index (0-based) and board of the first of n events naming a board that does not exist, or nil.
local function badBoard(first, n)
  for k = 0, n - 1 do
    local board = ARGV[first + k * 5]
    if not boardExists(board) then return k, board end
  end
  return nil
end

local function orderOf(ts) return math.min(tonumber(ts), now) end
${HISTORY_LUA}

local function sequenceOne(i)
  local board, kind, key, ts, body = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local tag = tagOf(board)
  if ts == '' then ts = nowText end
  local entry = '{"board":"' .. board .. '","ts":' .. ts .. ',' .. string.sub(body, 2)
  local id = redis.call('XADD', tag .. ':log', 'MAXLEN', '~', historyMax, '*', 'e', entry)
  local envelope = '{"id":"' .. id .. '",' .. string.sub(entry, 2)
  if kind == 'status' then
    local statusKey = tag .. ':status'
    local current = redis.call('HGET', statusKey, key)
    local keep = true
    if current then
      local ok, decoded = pcall(cjson.decode, current)
      if ok and type(decoded) == 'table' and tonumber(decoded.ts) and type(decoded.id) == 'string' then
        local sequencedAt = tonumber(string.match(decoded.id, '^(%d+)-')) or now
        if math.min(tonumber(decoded.ts), sequencedAt) > orderOf(ts) then keep = false end
      end
    end
    if keep then redis.call('HSET', statusKey, key, envelope) end
  elseif kind == 'metric' then
    local series = tag .. ':m:' .. key
    redis.call('RPUSH', series, envelope)
    redis.call('LTRIM', series, -metricMax, -1)
    redis.call('ZADD', tag .. ':metrics', 'GT', string.format('%.0f', orderOf(ts)), key)
    recordMetricHistory(tag, key, ts, body)
  elseif kind == 'event' then
    local recent = tag .. ':events'
    redis.call('RPUSH', recent, envelope)
    redis.call('LTRIM', recent, -eventsMax, -1)
    recordAnnotation(tag, ts, body, envelope, now)
  end
  redis.call('PUBLISH', ARGV[4], envelope)
  return id
end
`;

/**
 * Publisher: ARGV 7.. are events. Returns their ids, or an error naming the first event with an unknown
 * board or a bad ts; then nothing is written.
 */
export const SEQUENCE_SCRIPT = `${SEQUENCE_LIB}
local first = ${COMMON_ARGS + 1}
local n = (#ARGV - first + 1) / ${ARGS_PER_EVENT}
local k, board = badBoard(first, n)
if k then return redis.error_reply('${BOARD_ERROR_PREFIX} ' .. k .. ' ' .. board) end
k = badTs(first, n)
if k then return redis.error_reply('${TS_ERROR_PREFIX} ' .. k .. ' ' .. nowText) end
local ids = {}
for i = first, #ARGV, ${ARGS_PER_EVENT} do ids[#ids + 1] = sequenceOne(i) end
return ids
`;

/**
 * Raw ingest (docs/events.md, "Raw PUBLISH: exactly once"). KEYS 1: the position key of a marker, holding
 * the highest index sequenced (-1: none yet). ARGV 7: index of the first message, 8: position key TTL ms,
 * then per message: its number of events n (0 = invalid, still occupies its index), then n events.
 * Indexes up to the stored one are skipped (another worker sequenced them); the rest are sequenced.
 * Reply: {'ok', skipped, r...} with r per message after the skipped ones (events sequenced, UNKNOWN_BOARD
 * or TS_REJECTED), {'unknown'} when the marker expired or was never registered, {'gap', h} when messages
 * before firstIndex were never sequenced (this worker's count cannot be trusted).
 */
export const RAW_INGEST_SCRIPT = `${SEQUENCE_LIB}
local stored = redis.call('GET', KEYS[1])
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
  elseif badBoard(i + 1, n) then
    reply[#reply + 1] = ${UNKNOWN_BOARD}
  elseif badTs(i + 1, n) then
    reply[#reply + 1] = ${TS_REJECTED}
  else
    for j = i + 1, i + n * ${ARGS_PER_EVENT}, ${ARGS_PER_EVENT} do sequenceOne(j) end
    reply[#reply + 1] = n
  end
  index = index + 1
  i = i + 1 + n * ${ARGS_PER_EVENT}
end
if index - 1 > h then redis.call('SET', KEYS[1], index - 1, 'PX', ARGV[8]) else redis.call('PEXPIRE', KEYS[1], ARGV[8]) end
return reply
`;

/**
 * Durable ingest (docs/events.md, "Durable input"). KEYS 1: the input stream. ARGV 7: consumer group,
 * 8: this consumer, then per entry: entry id, n (0 = invalid: acknowledged, not sequenced), n events.
 * An entry is handled only while it is still pending for this consumer: one that another consumer claimed
 * (because this one looked dead) is left to it. Handled entries are acknowledged and deleted, so XLEN is
 * the backlog. Reply per entry: events sequenced, UNKNOWN_BOARD, TS_REJECTED or NOT_OWNED.
 */
export const DURABLE_INGEST_SCRIPT = `${SEQUENCE_LIB}
local reply = {}
local i = 9
while i <= #ARGV do
  local entryId, n = ARGV[i], tonumber(ARGV[i + 1])
  local pending = redis.call('XPENDING', KEYS[1], ARGV[7], entryId, entryId, 1, ARGV[8])
  if #pending == 0 then
    reply[#reply + 1] = ${NOT_OWNED}
  else
    if n > 0 and badBoard(i + 2, n) then
      reply[#reply + 1] = ${UNKNOWN_BOARD}
    elseif n > 0 and badTs(i + 2, n) then
      reply[#reply + 1] = ${TS_REJECTED}
    else
      for j = i + 2, i + 1 + n * ${ARGS_PER_EVENT}, ${ARGS_PER_EVENT} do sequenceOne(j) end
      reply[#reply + 1] = n
    end
    redis.call('XACK', KEYS[1], ARGV[7], entryId)
    redis.call('XDEL', KEYS[1], entryId)
  end
  i = i + 2 + n * ${ARGS_PER_EVENT}
end
return reply
`;
