-- Delete attributes of one session; a missing name is not an error.
-- KEYS[1] attributes hash   KEYS[2] expiry zset   KEYS[3] session deadline
-- ARGV[1] session idle TTL ms   ARGV[2] if_version of the single name ('' = none)   ARGV[3..] names
-- Returns {'OK', 1|0 per name} or {'E011005', name} when if_version does not match.
local attrs, expiry, meta = KEYS[1], KEYS[2], KEYS[3]
local idle_ms, if_version = tonumber(ARGV[1]), ARGV[2]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local dead = redis.call('ZRANGEBYSCORE', expiry, '-inf', now)
if #dead > 0 then
  redis.call('HDEL', attrs, unpack(dead))
  redis.call('ZREMRANGEBYSCORE', expiry, '-inf', now)
end

if if_version ~= '' then
  local record = redis.call('HGET', attrs, ARGV[3])
  if not record or tonumber(string.match(record, '^(%d+):')) ~= tonumber(if_version) then
    return { 'E011005', ARGV[3] }
  end
end

local out = { 'OK' }
for i = 3, #ARGV do
  out[#out + 1] = redis.call('HDEL', attrs, ARGV[i])
  redis.call('ZREM', expiry, ARGV[i])
end

local deadline = tonumber(redis.call('GET', meta))
if deadline then
  local ttl = math.max(1, math.min(idle_ms, deadline - now))
  redis.call('PEXPIRE', attrs, ttl)
  redis.call('PEXPIRE', expiry, ttl)
  redis.call('PEXPIRE', meta, ttl)
end
return out
