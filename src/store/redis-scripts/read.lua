-- Read attributes of one owner (session or user): get, exists or names. Renews the idle window.
-- KEYS and the helpers purge_expired/renew: see prelude.lua.
-- ARGV[1] op: get | exists | names   ARGV[2] idle TTL ms   ARGV[3..] names
-- Returns get: record or false per name; exists: 1 or 0 per name; names: every live name.
local op, idle_ms = ARGV[1], tonumber(ARGV[2])
local deadline = current_deadline()
if not deadline then
  if op == 'names' then return {} end
  local out, none = {}, 0
  if op == 'get' then none = false end
  for i = 3, #ARGV do out[#out + 1] = none end
  return out
end

purge_expired()
renew(deadline, idle_ms)

if op == 'names' then return redis.call('HKEYS', attrs) end
local names = {}
for i = 3, #ARGV do names[#names + 1] = ARGV[i] end
if op == 'get' then return call_sliced('HMGET', attrs, names) end
local out = {}
for i = 1, #names do out[i] = redis.call('HEXISTS', attrs, names[i]) end
return out
