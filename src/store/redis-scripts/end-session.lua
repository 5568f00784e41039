#!lua flags=allow-oom
-- End a session: purge its attributes and leave a tombstone, so that every later call on
-- the session (each script checks the tombstone in prelude.lua) fails. Idempotent.
-- KEYS[1] attributes hash, KEYS[2] expiry zset, KEYS[3] session deadline, KEYS[4] tombstone
-- ARGV[1] tombstone TTL ms (an existing tombstone is never shortened)
-- Returns 1.
-- events (events.lua): the first end of a watched session records `ended`; its event list is
-- cut to it (the marker moves to the last event before it) and kept as long as the tombstone.
local ending = EVENTS_ON and redis.call('EXISTS', KEYS[4]) == 0
-- end events
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[4]) < ttl then
  redis.call('SET', KEYS[4], '1', 'PX', ttl)
end
-- events (events.lua)
if ending and events_watched() then
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  if events_watch.last then
    redis.call('DEL', events_key)
    events_watch.last = '~' .. string.match(events_watch.last, '^~?([%d]+-[%d]+)')
    redis.call('RPUSH', events_key, events_watch.last)
  end
  events_add('e')
  events_flush(now, ttl)
end
-- end events
return 1
