#!lua flags=allow-oom
-- End a session: purge its attributes and leave a tombstone, so that every later call on
-- the session (each script checks the tombstone in prelude.lua) fails. Idempotent.
-- KEYS[1] attributes hash, KEYS[2] expiry zset, KEYS[3] session deadline, KEYS[4] tombstone
-- ARGV[1] tombstone TTL ms (an existing tombstone is never shortened)
-- Returns 1.
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[4]) < ttl then
  redis.call('SET', KEYS[4], '1', 'PX', ttl)
end
return 1
