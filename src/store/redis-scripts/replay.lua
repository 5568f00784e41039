-- The events of one owner after a given id, for a subscriber (src/events/redis-feed.ts): what
-- it missed, or only where the list ends. Reads the event list that events.lua writes; creates
-- a list holding only its marker when there is none, so that every later event of the owner
-- is known to come after the subscriber's starting point. No prelude: nothing is purged, no
-- TTL of the owner's data is renewed.
-- KEYS[1] attributes hash, KEYS[2] event list
-- ARGV[1] since: the last id the subscriber saw, exclusive ('' = none: no replay)
-- ARGV[2] TTL ms of a list created here (the owner's idle window)
-- Returns {resync 0|1, last id, then 7 per event: id, kind, version, expires, e|p, name,
-- payload or false}. resync is 1, with no events, when `since` is not within the list (older
-- than its marker, newer than its last id, or the list was gone): events may have been lost.
-- The payload is the attribute's value (plain only) when it still has the event's version.
local attrs, events_key, since = KEYS[1], KEYS[2], ARGV[1]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local lines = redis.call('LRANGE', events_key, 0, -1)
if #lines == 0 then
  local base = string.format('%d', now) .. '-0'
  redis.call('RPUSH', events_key, '~' .. base)
  redis.call('PEXPIRE', events_key, tonumber(ARGV[2]))
  return { since ~= '' and 1 or 0, base }
end

local function parse_id (id)
  local ms, seq = string.match(id or '', '^(%d+)-(%d+)$')
  if not ms then return nil end
  return { tonumber(ms), tonumber(seq) }
end
local function before (a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end

local base = parse_id(string.match(lines[1], '^~(.*)$'))
local last_text = string.match(lines[#lines], '^~?(%d+-%d+)')
if since == '' then return { 0, last_text } end
local from = parse_id(since)
if not base or not from or before(from, base) or before(parse_id(last_text), from) then return { 1, last_text } end

local out = { 0, last_text }
local records = {}
for i = 2, #lines do
  local id, kind, version, expires, flag, name = string.match(lines[i], '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  if id and before(from, parse_id(id)) then
    local payload = false
    if (kind == 'a' or kind == 'c') and flag == 'p' then
      if records[name] == nil then records[name] = redis.call('HGET', attrs, name) end
      local record = records[name]
      if record then
        local v, e, p = string.match(record, '^(%d+):%d+:%d+:(%d*):p:(.*)$')
        if v == version and (e == '' or tonumber(e) > now) then payload = p end
      end
    end
    local n = #out
    out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5], out[n + 6], out[n + 7] = id, kind, version, expires, flag, name, payload
  end
end
return out
