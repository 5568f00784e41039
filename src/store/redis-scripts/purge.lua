-- Purge an owner's expired attributes now, for an event feed that watches the owner
-- (src/events/channel-feed.ts): it records their `expired` events (events.lua, through
-- purge_expired) at the expiry time rather than at the next call. Renews nothing.
-- KEYS and the helpers: see prelude.lua (ENDED for an ended session, as every script).
-- Returns {next expiry ms or -1, Redis now ms}.
purge_expired()
-- The session state's earliest expiry moved on (prelude.lua): keep it, without renewing.
if state_changed then redis.call('SET', meta, state_text(), 'KEEPTTL') end
local next = redis.call('ZRANGE', expiry, 0, 0, 'WITHSCORES')
return { next[2] and tonumber(next[2]) or -1, now }
