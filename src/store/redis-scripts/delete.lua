-- Delete attributes of one owner (session or user); a missing name is not an error.
-- KEYS and the helpers purge_expired/renew: see prelude.lua.
-- ARGV[1] idle TTL ms   ARGV[2] if_version of the single name ('' = none)   ARGV[3..] names
-- Returns {'OK', 1|0 per name} or {'E011005', name} when if_version does not match.
local idle_ms, if_version = tonumber(ARGV[1]), ARGV[2]
purge_expired()

if if_version ~= '' then
  local record = redis.call('HGET', attrs, ARGV[3])
  if not record or tonumber(string.match(record, '^(%d+):')) ~= tonumber(if_version) then
    return { 'E011005', ARGV[3] }
  end
end

-- One HDEL per name, as its reply says whether that name existed (HMGET would tell too, but
-- would copy every value first); one ZREM for all of them.
local out, names = { 'OK' }, {}
for i = 3, #ARGV do
  out[#out + 1] = redis.call('HDEL', attrs, ARGV[i])
  names[#names + 1] = ARGV[i]
end
call_sliced('ZREM', expiry, names)

local deadline = current_deadline()
if deadline then
  renew(deadline, idle_ms)
end
-- events (events.lua)
for i = 1, #names do
  if out[i + 1] == 1 then events_add('r', names[i]) end
end
events_flush(now, deadline and math.min(idle_ms, deadline - now) or idle_ms)
-- end events
return out
