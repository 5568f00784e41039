-- Read attributes of one session: get, exists or names. Renews the session's idle window.
-- KEYS[1] attributes hash   KEYS[2] expiry zset   KEYS[3] session deadline
-- ARGV[1] op: get | exists | names   ARGV[2] session idle TTL ms   ARGV[3..] names
-- Returns get: record or false per name; exists: 1 or 0 per name; names: every live name.
local attrs, expiry, meta = KEYS[1], KEYS[2], KEYS[3]
local op, idle_ms = ARGV[1], tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local deadline = tonumber(redis.call('GET', meta))
if not deadline then
  if op == 'names' then return {} end
  local out = {}
  for i = 3, #ARGV do out[#out + 1] = op == 'get' and false or 0 end
  return out
end

local dead = redis.call('ZRANGEBYSCORE', expiry, '-inf', now)
if #dead > 0 then
  redis.call('HDEL', attrs, unpack(dead))
  redis.call('ZREMRANGEBYSCORE', expiry, '-inf', now)
end
local ttl = math.max(1, math.min(idle_ms, deadline - now))
redis.call('PEXPIRE', attrs, ttl)
redis.call('PEXPIRE', expiry, ttl)
redis.call('PEXPIRE', meta, ttl)

if op == 'names' then return redis.call('HKEYS', attrs) end
local out = {}
for i = 3, #ARGV do
  if op == 'get' then
    out[#out + 1] = redis.call('HGET', attrs, ARGV[i])
  else
    out[#out + 1] = redis.call('HEXISTS', attrs, ARGV[i])
  end
end
return out
