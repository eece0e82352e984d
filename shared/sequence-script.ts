// The sequencing scripts (docs/events.md, "How events are sequenced and kept"): one atomic step that gives
// an event its id in its board's log (XADD), updates the board's current state and publishes the envelope
// on the board's shard channel (SPUBLISH) to the workers with a stream of the board. Every call covers ONE
// board and declares its keys, so on Redis Cluster it runs on the shard of the board's hash tag
// (docs/design.md, "Redis keys"); a publish naming several boards is one atomic call per board. Three
// entry points share one Lua body:
// - SEQUENCE_SCRIPT: the publisher (CLI, `POST /api/publish`, TypeScript scripts);
// - RAW_INGEST_SCRIPT: raw `PUBLISH` input, deduplicated per board by position in the ingest channel;
// - DURABLE_INGEST_SCRIPT: entries of the durable input stream, deduplicated per board by entry id.
//
// KEYS: 1 the board's log, 2 the board's meta hash (its existence lets events in), then each script's
//   dedupe record (a raw-ingest position of this board; none for the others).
// Common ARGV: 1 history max, 2 metric points kept per series, 3 log events kept, 4 the board's shard
//   channel, 5 installation prefix, 6 how far (ms) a `ts` may be ahead of Redis' clock.
// An event is 5 ARGV: board, kind, service|name, ts ('' = now), body (the event as JSON without `ts` and
// `board`); every event of a call names the call's board. The keys the script builds itself (a metric's
// series) carry the board's hash tag, built from ARGV 5 by the rule of `boardTag` (shared/keys.ts; a test
// checks both agree): `{<prefix>}` for `main`, `{<prefix>:<board>}` for any other board. A board other
// than `main` must exist (its meta hash), else the event is refused.
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
/** Reply code of a message or entry whose part for this board was sequenced before (by any worker). */
export const ALREADY_SEQUENCED = -4;
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

-- Every event of a call names one board, whose meta hash is KEYS[2].
local known = { main = true }
local function boardExists(board)
  if known[board] == nil then known[board] = redis.call('EXISTS', KEYS[2]) == 1 end
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
  redis.call('SPUBLISH', ARGV[4], envelope)
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
 * Raw ingest (docs/events.md, "Raw PUBLISH: exactly once"), one board's part of a batch of messages.
 * KEYS 3: this board's position record of the marker, holding the highest index whose part for this board
 * is done (absent: none yet). ARGV 7: the batch's last index, 8: position record TTL ms, then per message
 * of the batch with events of this board: its index, its number n of events for this board, n events.
 * Indexes up to the stored one are skipped (another worker sequenced them); the rest are sequenced. A
 * worker sends its batches in order and every batch covers all of its messages' parts for the board, so
 * after a call every part up to the batch's last index is done: the record moves there.
 * Reply per message: events sequenced, ALREADY_SEQUENCED, UNKNOWN_BOARD or TS_REJECTED.
 */
export const RAW_INGEST_SCRIPT = `${SEQUENCE_LIB}
local h = tonumber(redis.call('GET', KEYS[3]) or '-1')
local reply = {}
local i = 9
while i <= #ARGV do
  local index, n = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  if index <= h then
    reply[#reply + 1] = ${ALREADY_SEQUENCED}
  elseif badBoard(i + 2, n) then
    reply[#reply + 1] = ${UNKNOWN_BOARD}
  elseif badTs(i + 2, n) then
    reply[#reply + 1] = ${TS_REJECTED}
  else
    for j = i + 2, i + 1 + n * ${ARGS_PER_EVENT}, ${ARGS_PER_EVENT} do sequenceOne(j) end
    reply[#reply + 1] = n
  end
  i = i + 2 + n * ${ARGS_PER_EVENT}
end
-- A refused board's record only needs to outlive the other workers' calls for the same positions.
local ttl = ARGV[8]
if KEYS[2] ~= tagOf('main') .. ':board' and redis.call('EXISTS', KEYS[2]) == 0 then ttl = math.min(tonumber(ttl), 60000) end
if tonumber(ARGV[7]) > h then redis.call('SET', KEYS[3], ARGV[7], 'PX', ttl) else redis.call('PEXPIRE', KEYS[3], ttl) end
return reply
`;

/**
 * Raw ingest's marker check (docs/events.md, "Raw PUBLISH: exactly once"), in the installation's slot,
 * before a batch's per-board calls. KEYS 1: the marker's record, holding the highest index a worker has
 * started (-1: none yet). ARGV 1: the batch's first index, 2: its last, 3: record TTL ms.
 * Reply: {'ok'}, {'unknown'} when the marker expired or was never registered, {'gap', h} when messages
 * before the first index were never started by any worker (this worker's count cannot be trusted).
 */
export const RAW_MARKER_SCRIPT = `
local stored = redis.call('GET', KEYS[1])
if not stored then return {'unknown'} end
local h = tonumber(stored)
if tonumber(ARGV[1]) > h + 1 then return {'gap', stored} end
if tonumber(ARGV[2]) > h then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) else redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {'ok'}
`;

/**
 * Durable ingest (docs/events.md, "Durable input"), one board's part of a batch of entries. ARGV 7: TTL
 * ms of a dedupe record, 8: the board, then per entry with events of this board: entry id, n (its events for this
 * board), n events. An entry's part is sequenced once: a dedupe record `<tag>:ingest:done:<entry id>` in
 * the board's slot says it was (by this consumer before a crash, or by another that claimed it). The
 * caller then waits for replicas (WAIT) and acknowledges and deletes the entry in the input's slot.
 * Reply per entry: events sequenced, ALREADY_SEQUENCED, UNKNOWN_BOARD or TS_REJECTED.
 */
export const DURABLE_INGEST_SCRIPT = `${SEQUENCE_LIB}
local reply = {}
local doneTag = tagOf(ARGV[8]) .. ':ingest:done:'
local i = 9
while i <= #ARGV do
  local entryId, n = ARGV[i], tonumber(ARGV[i + 1])
  local done = doneTag .. entryId
  if redis.call('EXISTS', done) == 1 then
    reply[#reply + 1] = ${ALREADY_SEQUENCED}
  elseif badBoard(i + 2, n) then
    reply[#reply + 1] = ${UNKNOWN_BOARD}
  elseif badTs(i + 2, n) then
    reply[#reply + 1] = ${TS_REJECTED}
  else
    for j = i + 2, i + 1 + n * ${ARGS_PER_EVENT}, ${ARGS_PER_EVENT} do sequenceOne(j) end
    redis.call('SET', done, n, 'PX', ARGV[7])
    reply[#reply + 1] = n
  end
  i = i + 2 + n * ${ARGS_PER_EVENT}
end
return reply
`;
