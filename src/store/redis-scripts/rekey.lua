-- Replace records of one session with their re-encrypted form, each only if it is still
-- exactly the record that was read (src/rekey.ts, `sso-attrs rekey`). Standalone (no
-- prelude): it never creates a key, never renews a TTL, never touches :x or :m, and keeps
-- each record's version and times, so a client's write in between (which always bumps the
-- version) makes the comparison fail and is never overwritten.
-- KEYS[1] attributes hash   ARGV: triples of name, record as read, record to write
-- Returns one number per triple: 1 replaced, 0 changed or gone since it was read,
-- -1 expired (left for the purge of the next call on the session).
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local out = {}
for i = 1, #ARGV, 3 do
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  if current ~= ARGV[i + 1] then
    out[#out + 1] = 0
  else
    local expires = string.match(current, '^%d+:%d+:%d+:(%d*):')
    if expires ~= '' and tonumber(expires) <= now then
      out[#out + 1] = -1
    else
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
      out[#out + 1] = 1
    end
  end
end
return out
