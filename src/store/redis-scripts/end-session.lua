#!lua flags=allow-oom
-- End a session: purge its attributes and leave a tombstone, so that every later call on
-- the session (each script checks the tombstone in prelude.lua) fails. Idempotent.
-- KEYS[1] attributes hash, KEYS[2] expiry zset, KEYS[3] session deadline, KEYS[4] tombstone
-- ARGV[1] tombstone TTL ms (an existing tombstone is never shortened)
-- Returns 1.
-- events (events.lua): the first end publishes `ended`; an existing event list is cut to it
-- (the marker moves to the last event before it), kept as long as the tombstone.
local ending = EVENTS_ON and redis.call('EXISTS', KEYS[4]) == 0
-- end events
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[4]) < ttl then
  redis.call('SET', KEYS[4], '1', 'PX', ttl)
end
-- events (events.lua)
if ending then
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  local last = redis.call('LINDEX', events_key, -1)
  if last then
    redis.call('DEL', events_key)
    redis.call('RPUSH', events_key, '~' .. string.match(last, '^~?([%d]+-[%d]+)'))
    events_add('e')
    events_flush(now, ttl)
  else
    -- No list to keep: announce it live only (a replay finds the session ended by its tombstone).
    redis.call('SPUBLISH', events_key, cjson.encode({ { string.format('%d', now) .. '-0', 'e', '', '', '', '', false } }))
  end
end
-- end events
return 1
