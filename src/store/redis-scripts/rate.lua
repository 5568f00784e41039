-- Add requests to a fixed rate-limit window (shared by every service instance).
-- KEYS[1] the counter   ARGV[1] window ms   ARGV[2] how many requests to add (0: just read)
-- Returns {requests in the window so far, ms until the window ends}.
local count = redis.call('INCRBY', KEYS[1], tonumber(ARGV[2]))
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
  ttl = tonumber(ARGV[1])
end
return { count, ttl }
