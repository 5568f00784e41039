-- Record a session in its user's index, once per token and service instance, after the
-- token's first successful request there; refused (and nothing written) when the user's
-- sessions were ended after the token was issued, which a logout by `sub` running at the same
-- time as that request may have done.
-- KEYS[1] user's session index (zset session id -> epoch ms until which it may be used)
-- KEYS[2] user tombstone (epoch ms of the logout)
-- ARGV[1] session id, ARGV[2] token iat ms ('' = none), ARGV[3] token exp ms
-- Returns 'OK' or 'ENDED'.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ended_at = redis.call('GET', KEYS[2])
if ended_at and (ARGV[2] == '' or tonumber(ARGV[2]) <= tonumber(ended_at)) then return 'ENDED' end
local until_ms = tonumber(ARGV[3])
if until_ms <= now then return 'OK' end
-- Nothing is written when the session is indexed already: a token seen again changes nothing.
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not current or tonumber(current) < until_ms then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('ZADD', KEYS[1], until_ms, ARGV[1])
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]))
end
return 'OK'
