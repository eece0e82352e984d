// The sequencing script (DESIGN.md, "Publish paths and sequencing"): one atomic step that gives an event
// its global id (XADD to the log), updates the current state and publishes the envelope to every worker.
//
// KEYS: 1 log stream, 2 status hash, 3 metric index, 4 list of recent log events (`type: 'event'`).
// ARGV: 1 history max, 2 metric points kept per series, 3 dedupe key ('' = none), 4 dedupe window ms,
//       5 events channel, 6 metric series key prefix, 7 log events kept, then per event: kind,
//       service|name, ts ('' = now), body (the event as JSON without `ts`).
// Metric series and dedupe keys are built from ARGV 6/3; they carry the same hash tag as KEYS, so the
// script stays within one Redis Cluster slot.
// The envelope is spliced as text rather than re-encoded with cjson, which would round numbers to 14
// significant digits.
// Recent log events get their own capped list (not only the log): a flood of metric points must not push
// the last warnings out of the snapshot.
import type { RedisNames } from './keys.ts';

/** The capped list of the most recent `event` envelopes, read by the snapshot. */
export function recentEventsKey(names: RedisNames): string {
  return names.key('events');
}

export const SEQUENCE_SCRIPT = `
if ARGV[3] ~= '' then
  if not redis.call('SET', ARGV[3], '1', 'NX', 'PX', ARGV[4]) then return {} end
end
local metricMax = tonumber(ARGV[2])
local eventsMax = tonumber(ARGV[7])
local now = nil
local ids = {}
for i = 8, #ARGV, 4 do
  local kind, key, ts, body = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if ts == '' then
    if not now then
      local t = redis.call('TIME')
      now = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
    end
    ts = now
  end
  local entry = '{"ts":' .. ts .. ',' .. string.sub(body, 2)
  local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', entry)
  local envelope = '{"id":"' .. id .. '",' .. string.sub(entry, 2)
  if kind == 'status' then
    local current = redis.call('HGET', KEYS[2], key)
    local keep = true
    if current then
      local ok, decoded = pcall(cjson.decode, current)
      if ok and type(decoded) == 'table' and tonumber(decoded.ts) and tonumber(decoded.ts) > tonumber(ts) then
        keep = false
      end
    end
    if keep then redis.call('HSET', KEYS[2], key, envelope) end
  elseif kind == 'metric' then
    local series = ARGV[6] .. key
    redis.call('RPUSH', series, envelope)
    redis.call('LTRIM', series, -metricMax, -1)
    redis.call('ZADD', KEYS[3], 'GT', ts, key)
  elseif kind == 'event' then
    redis.call('RPUSH', KEYS[4], envelope)
    redis.call('LTRIM', KEYS[4], -eventsMax, -1)
  end
  redis.call('PUBLISH', ARGV[5], envelope)
  ids[#ids + 1] = id
end
return ids
`;
