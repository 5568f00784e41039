-- Change events (issue 16, docs/KEYS.md "Events"). Put in front of every script that changes
-- attributes (after its flags line), ahead of prelude.lua; the store sets EVENTS_ON, EVENTS_MAX
-- and EVENTS_SLACK in a line before it. A script adds its events with events_add while it runs
-- and writes them with events_flush(now, ttl_ms) right before its successful return, so a
-- refused call records nothing.
-- Only watched owners pay: events are kept in the owner's event list (the key is derived from
-- KEYS[1], the attributes hash `…:a`, as `…:e`, in the owner's slot) while it exists, and
-- published on the sharded channel of the same name while someone listens (PUBSUB
-- SHARDNUMSUB, this node's subscribers: the channel's slot is here). A subscription creates the
-- list (replay.lua); an event for a listened owner without one creates it too. An owner nobody
-- watches costs two lookups per script and nothing is written.
-- The list: its first element is a marker `~<id>` (every event after that id is in the list),
-- then one element per event `<id>|<kind>|<version>|<expires ms>|<e|p>|<name>`; kinds a added,
-- c changed, r removed, x expired, e ended. Ids are `<ms>-<seq>` (Redis time), increasing per
-- owner. At EVENTS_MAX + EVENTS_SLACK elements the oldest are dropped down to EVENTS_MAX and
-- the marker moves to the last dropped id. The payload goes out live only, never into the
-- list (replay.lua takes it from the attribute while it is still that version).
local events_key = string.sub(KEYS[1], 1, -2) .. 'e'
local events_pending = {}
-- nil until asked; then false (nobody watches) or { last = last element or false, listeners = n }
local events_watch

local function events_watched ()
  if events_watch == nil then
    local last = redis.call('LINDEX', events_key, -1)
    local listeners = redis.call('PUBSUB', 'SHARDNUMSUB', events_key)[2]
    events_watch = (last or listeners > 0) and { last = last, listeners = listeners } or false
  end
  return events_watch
end

local function events_add (kind, name, version, expires, flag, payload)
  if not EVENTS_ON or not events_watched() then return end
  events_pending[#events_pending + 1] = { kind, name or '', version or '', expires or '', flag or '', payload or false }
end

-- The events of write.lua's records (name, record pairs), added or changed after `current`.
local function events_add_records (current, stored)
  if not EVENTS_ON or not events_watched() then return end
  for i = 1, #stored, 2 do
    local v, e, f, payload = string.match(stored[i + 1], '^(%d+):%d+:%d+:(%d*):([ep]):(.*)$')
    events_add(current[(i + 1) / 2] and 'c' or 'a', stored[i], v, e, f, f == 'p' and payload)
  end
end

local function events_flush (now, ttl_ms)
  if #events_pending == 0 then return end
  local watch = events_watched()
  local lines, message = {}, {}
  local ms, seq
  if watch.last then
    local last_ms, last_seq = string.match(watch.last, '^~?(%d+)-(%d+)')
    ms, seq = tonumber(last_ms), tonumber(last_seq)
    if now > ms then ms, seq = now, 0 end
  else
    ms, seq = now, 0
    lines[1] = '~' .. string.format('%d', now) .. '-0'
  end
  local ms_text = string.format('%d', ms)
  for i = 1, #events_pending do
    local event = events_pending[i]
    seq = seq + 1
    local id = ms_text .. '-' .. seq
    lines[#lines + 1] = id .. '|' .. event[1] .. '|' .. event[3] .. '|' .. event[4] .. '|' .. event[5] .. '|' .. event[2]
    message[i] = { id, event[1], event[3], event[4], event[5], event[2], event[6] }
  end
  events_pending = {}
  watch.last = lines[#lines]
  local length = 0
  for first = 1, #lines, 1000 do
    length = redis.call('RPUSH', events_key, unpack(lines, first, math.min(first + 999, #lines)))
  end
  if length > EVENTS_MAX + EVENTS_SLACK then
    local drop = length - EVENTS_MAX
    local last_dropped = redis.call('LINDEX', events_key, drop - 1)
    redis.call('LTRIM', events_key, drop, -1)
    redis.call('LPUSH', events_key, '~' .. string.match(last_dropped, '^~?([%d]+-[%d]+)'))
  end
  redis.call('PEXPIRE', events_key, math.max(1, ttl_ms))
  if watch.listeners > 0 then redis.call('SPUBLISH', events_key, cjson.encode(message)) end
end

-- Called by purge_expired (prelude.lua) with the names it is about to remove, while the hash
-- still has its TTL, which the list then gets too.
local function events_expired (names, now)
  if not EVENTS_ON or not events_watched() then return end
  for i = 1, #names do events_add('x', names[i]) end
  events_flush(now, redis.call('PTTL', KEYS[1]))
end
