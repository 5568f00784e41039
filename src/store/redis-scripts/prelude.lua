-- Prepended to every script. KEYS[1] attributes hash (name -> record), KEYS[2] expiry zset
-- (name -> expires ms); a session's attributes also KEYS[3] session deadline (epoch ms: first
-- attribute + max TTL) and KEYS[4] tombstone of an ended session: while it exists every call
-- fails with ENDED. A user's attributes come with the first two keys only: no deadline, no
-- tombstone (src/store/keys.ts).
-- "now" comes from Redis so that every service instance agrees on expiry.
local attrs, expiry, meta = KEYS[1], KEYS[2], KEYS[3]
if KEYS[4] and redis.call('EXISTS', KEYS[4]) == 1 then return redis.error_reply('ENDED session has ended') end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

-- One command over a whole list of arguments after the key (HMGET, HSET pairs, ZADD pairs,
-- HDEL names) instead of one command per attribute, in slices of 1000: unpack() fails beyond
-- about 8000 values (Lua's C stack). Returns the replies of a command answering one array,
-- joined (HMGET's false for a missing field stays in place).
local function call_sliced(command, key, args)
  local replies = {}
  for first = 1, #args, 1000 do
    local reply = redis.call(command, key, unpack(args, first, math.min(first + 999, #args)))
    if type(reply) == 'table' then
      for j = 1, #reply do replies[#replies + 1] = reply[j] end
    end
  end
  return replies
end

-- Expired attributes are removed before anything else reads the hash, so they are invisible
-- to every operation and their names are free.
local function purge_expired()
  local dead = redis.call('ZRANGEBYSCORE', expiry, '-inf', now)
  if #dead > 0 then
    events_expired(dead, now) -- events.lua
    call_sliced('HDEL', attrs, dead)
    redis.call('ZREMRANGEBYSCORE', expiry, '-inf', now)
  end
end

-- The owner's deadline: a session's (false while it has no data), or math.huge for a user's
-- attributes that exist (they have an idle lifetime only; false when there are none).
local function current_deadline()
  if meta then return tonumber(redis.call('GET', meta)) end
  return redis.call('EXISTS', attrs) == 1 and math.huge
end

-- Every key of the owner lives for the idle window, never past the deadline.
local function renew(deadline, idle_ms)
  local ttl = math.max(1, math.min(idle_ms, deadline - now))
  redis.call('PEXPIRE', attrs, ttl)
  redis.call('PEXPIRE', expiry, ttl)
  if meta then redis.call('PEXPIRE', meta, ttl) end
end
