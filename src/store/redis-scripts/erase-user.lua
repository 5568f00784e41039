-- Erase every attribute of a user at once (DELETE /sso/user, account deletion): both keys go
-- in one DEL, so no reader ever sees part of them. No prelude: nothing to purge or renew.
-- KEYS[1] the user's attributes hash, KEYS[2] its expiry zset
-- Returns how many live (unexpired) attributes there were.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local live = redis.call('HLEN', KEYS[1]) - redis.call('ZCOUNT', KEYS[2], '-inf', now)
redis.call('DEL', KEYS[1], KEYS[2])
return live
