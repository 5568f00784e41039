-- Prepended to every script. KEYS[1] attributes hash (name -> record), KEYS[2] expiry zset
-- (name -> expires ms); a session's attributes also KEYS[3] session state (below) and KEYS[4]
-- tombstone of an ended session: while it exists every call fails with ENDED. A user's
-- attributes come with the first two keys only: no state, no tombstone (src/store/keys.ts).
-- "now" comes from Redis so that every service instance agrees on expiry.
local attrs, expiry, meta = KEYS[1], KEYS[2], KEYS[3]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

-- A session's state: "<deadline>:<when its keys expire>:<earliest expiry in the zset, empty
-- when it holds none>", epoch ms (a bare deadline, as written before, leaves the other two
-- unknown: renewed and purged on the next call). The tombstone is probed only when there is no
-- state: end-session.lua deletes the state with the data, and nothing writes it again while
-- the tombstone lives, so a session that has state has not ended.
local state = meta and redis.call('GET', meta)
if meta and not state and redis.call('EXISTS', KEYS[4]) == 1 then return redis.error_reply('ENDED session has ended') end
local deadline, keys_expire_at, earliest_expiry
if state then
  local d, k, e = string.match(state, '^(%d+):(%d+):(%d*)$')
  if d then
    deadline, keys_expire_at, earliest_expiry = tonumber(d), tonumber(k), e == '' and math.huge or tonumber(e)
  else
    deadline, keys_expire_at, earliest_expiry = tonumber(state), 0, 0
  end
end
local state_changed = false

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
-- to every operation and their names are free. A session's zset is read only once its
-- earliest expiry (kept in the state, never later than the real one) has come.
local function purge_expired()
  if deadline and earliest_expiry > now then return end
  local dead = redis.call('ZRANGEBYSCORE', expiry, '-inf', now)
  if #dead > 0 then
    events_expired(dead, now) -- events.lua
    call_sliced('HDEL', attrs, dead)
    redis.call('ZREMRANGEBYSCORE', expiry, '-inf', now)
  end
  if deadline then
    local first = redis.call('ZRANGE', expiry, 0, 0, 'WITHSCORES')
    earliest_expiry = first[2] and tonumber(first[2]) or math.huge
    state_changed = true
  end
end

-- The owner's deadline: a session's (false while it has no data), or math.huge for a user's
-- attributes that exist (they have an idle lifetime only; false when there are none).
local function current_deadline()
  if meta then return deadline or false end
  return redis.call('EXISTS', attrs) == 1 and math.huge
end

local function state_text()
  return string.format('%d:%d:', deadline, keys_expire_at) .. (earliest_expiry == math.huge and '' or string.format('%d', earliest_expiry))
end

-- Every key of the owner lives for the idle window, never past the deadline. A session's keys
-- are renewed only when that moves their expiry by more than a tenth of the idle window, or
-- onto the deadline (Spring Session and Zato coalesce "last accessed" the same way): a session
-- read many times a second costs no PEXPIRE per read. Returns true when the keys were renewed.
local function renew(until_ms, idle_ms)
  local target = math.min(now + idle_ms, until_ms)
  if meta then
    if target - keys_expire_at <= idle_ms / 10 and (target < until_ms or keys_expire_at == until_ms) then
      if state_changed then redis.call('SET', meta, state_text(), 'KEEPTTL') end
      return false
    end
    keys_expire_at = target
  end
  local ttl = math.max(1, target - now)
  redis.call('PEXPIRE', attrs, ttl)
  redis.call('PEXPIRE', expiry, ttl)
  if meta then redis.call('SET', meta, state_text(), 'PX', ttl) end
  return true
end
