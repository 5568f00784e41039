#!lua flags=allow-oom
-- End every session of a user, step one (on the user's slot): set the user tombstone to now
-- (tokens issued until now are refused by admit.lua) and take the user's live sessions out
-- of the index; the caller then ends each of them on its own slot (end-session.lua).
-- KEYS[1] user's session index (zset session id -> epoch ms until which it may be used)
-- KEYS[2] user tombstone (epoch ms of the logout)
-- ARGV[1] tombstone TTL ms
-- Returns the ids of the sessions to end.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('SET', KEYS[2], string.format('%d', now), 'PX', tonumber(ARGV[1]))
local sessions = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
redis.call('DEL', KEYS[1])
return sessions
