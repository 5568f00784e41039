-- Admit a session of a user, once per token and service instance (on a verified-token cache
-- miss): refuse it when the session was ended, or when the user's sessions were ended after
-- the token was issued; otherwise record the session in the user's index.
-- KEYS[1] user's session index, KEYS[2] user tombstone (the session's own tombstone lives in
-- the session's slot and is checked by every request script there)
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
