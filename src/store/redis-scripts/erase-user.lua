-- Erase every attribute of a user at once (DELETE /sso/user, account deletion): both keys go
-- in one DEL, so no reader ever sees part of them. No prelude: nothing to purge or renew.
-- KEYS[1] the user's attributes hash, KEYS[2] its expiry zset
-- ARGV[1] the user's idle TTL ms (for the event list)
-- Returns how many live (unexpired) attributes there were.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local live = redis.call('HLEN', KEYS[1]) - redis.call('ZCOUNT', KEYS[2], '-inf', now)
-- events (events.lua): `removed` for each live attribute, `expired` for the expired ones
if EVENTS_ON and redis.call('EXISTS', KEYS[1]) == 1 then
  local dead = {}
  for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do dead[name] = true end
  for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do events_add(dead[name] and 'x' or 'r', name) end
  events_flush(now, tonumber(ARGV[1]))
end
-- end events
redis.call('DEL', KEYS[1], KEYS[2])
return live
