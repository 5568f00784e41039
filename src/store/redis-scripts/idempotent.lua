-- Wraps write.lua or delete.lua (with prelude.lua) for a call that carries an Idempotency-Key.
-- The last key is the key's record, in the owner's slot; the last two arguments are the
-- request's fingerprint and the record's TTL in ms. They are taken off KEYS and ARGV first, so
-- the wrapped script sees exactly its usual keys and arguments.
-- A record of the same fingerprint: its reply is returned again and nothing is written. Of
-- another fingerprint: {'E011008'}. Otherwise the script runs, and a final reply (success, or
-- a refusal the same request would meet again) is recorded with the fingerprint, atomically
-- with the write. STALE and CIPHER are internal retries and are not recorded; neither is an
-- error reply (an ended session).
local idem_key = table.remove(KEYS)
local idem_ttl = tonumber(table.remove(ARGV))
local idem_fingerprint = table.remove(ARGV)
local idem_replayed = false

local function run()
--PRELUDE--
  local recorded = redis.call('GET', idem_key)
  if recorded then
    idem_replayed = true
    local newline = string.find(recorded, '\n', 1, true)
    if string.sub(recorded, 1, newline - 1) ~= idem_fingerprint then return { 'E011008' } end
    return cjson.decode(string.sub(recorded, newline + 1))
  end
--SCRIPT--
end

local reply = run()
if not idem_replayed and reply.err == nil and reply[1] ~= 'STALE' and reply[1] ~= 'CIPHER' then
  redis.call('SET', idem_key, idem_fingerprint .. '\n' .. cjson.encode(reply), 'PX', idem_ttl)
end
return reply
