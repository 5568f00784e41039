-- Add request counts to the rate-limit window shared by every service instance.
-- KEYS[1] the window's hash (field: caller or client address -> requests in the window)
-- ARGV[1] TTL ms of the window's hash   ARGV[2..] pairs: key, count to add (0: just read)
-- Returns each key's total in the window.
local totals = {}
for i = 2, #ARGV, 2 do
  totals[#totals + 1] = redis.call('HINCRBY', KEYS[1], ARGV[i], tonumber(ARGV[i + 1]))
end
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1])) end
return totals
