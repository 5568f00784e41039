-- Create, update or upsert a batch of attributes of one owner (session or user), all or nothing.
-- KEYS and the helpers purge_expired/renew: see prelude.lua.
-- ARGV[1] mode: create | update | set
-- ARGV[2] idle TTL ms   ARGV[3] session max TTL ms (unused for a user)   ARGV[4] max attributes
-- ARGV[5] the items, a JSON array of arrays of 8 fields: name, value kind (P plain | C cipher |
--   I inherit | K keep), plain JSON, ciphertext, expiry kind (K keep | C clear | S set),
--   expiry ms, if_version ('' = none), expect_version ('' = none)
-- Returns {'OK', version, expires_at (-1 = none), ...} or {code, name, ...} on failure:
--   E009001 exists (create), E009002 missing (update), E011005 if_version mismatch,
--   STALE expect_version mismatch, CIPHER inherit without ciphertext on an encrypted
--   attribute (the caller retries with it), E011001 too many attributes.
-- Record format: version:created_ms:modified_ms:expires_ms(or empty):e|p:payload
local mode = ARGV[1]
local idle_ms, max_ms, max_attrs = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
purge_expired()

local function parse(record)
  local v, c, m, e, f = string.match(record, '^(%d+):(%d+):(%d+):(%d*):([ep]):')
  return { version = tonumber(v), created = c, expires = e, flag = f,
           payload = string.sub(record, #v + #c + #m + #e + 7) }
end

local items = cjson.decode(ARGV[5])
local count = #items
local names = {}
for i = 1, count do names[i] = items[i][1] end
-- Names in a batch are distinct (the service refuses duplicates), so every read may come first.
local records = call_sliced('HMGET', attrs, names)
local current = {}
local fresh = 0
local present, missing, conflicts, stale, sealed = {}, {}, {}, {}, {}
for i = 1, count do
  local item = items[i]
  local name = names[i]
  local record = records[i]
  local cur = record and parse(record) or false
  current[i] = cur
  if cur then
    if mode == 'create' then present[#present + 1] = name end
  else
    if mode == 'update' or item[2] == 'K' then missing[#missing + 1] = name end
    fresh = fresh + 1
  end
  local if_version, expect_version = item[7], item[8]
  if if_version ~= '' and (not cur or cur.version ~= tonumber(if_version)) then conflicts[#conflicts + 1] = name end
  if expect_version ~= '' and (not cur or cur.version ~= tonumber(expect_version)) then stale[#stale + 1] = name end
  if item[2] == 'I' and item[4] == '' and cur and cur.flag == 'e' then sealed[#sealed + 1] = name end
end
if #present > 0 then return { 'E009001', unpack(present) } end
if #missing > 0 then return { 'E009002', unpack(missing) } end
if #conflicts > 0 then return { 'E011005', unpack(conflicts) } end
if #stale > 0 then return { 'STALE', unpack(stale) } end
if #sealed > 0 then return { 'CIPHER', unpack(sealed) } end
-- size: the hash's length before the write, read only when the write adds names (0: no hash yet).
local size = fresh > 0 and redis.call('HLEN', attrs) or -1
if fresh > 0 and size + fresh > max_attrs then return { 'E011001' } end

local until_ms = math.huge
if meta then
  if not deadline then
    -- A new session: its state is written by renew() below.
    deadline, keys_expire_at, earliest_expiry = now + max_ms, 0, math.huge
  end
  until_ms = deadline
end

local out = { 'OK' }
local stored, expiring, unexpiring = {}, {}, {}
-- An attribute that had an expiry is in the zset, so the zset exists before the ZADD below.
local zset_existed = false
local now_text = string.format('%d', now)
for i = 1, count do
  local item = items[i]
  local name, kind, cur = item[1], item[2], current[i]
  local payload, flag
  if kind == 'K' then
    payload, flag = cur.payload, cur.flag
  elseif kind == 'P' or (kind == 'I' and not (cur and cur.flag == 'e')) then
    payload, flag = item[3], 'p'
  else
    payload, flag = item[4], 'e'
  end
  local expiry_kind = item[5]
  local expires = false
  if expiry_kind == 'S' then
    expires = math.min(now + item[6], until_ms)
  elseif expiry_kind == 'K' and cur and cur.expires ~= '' then
    expires = tonumber(cur.expires)
  end
  if cur and cur.expires ~= '' then zset_existed = true end
  local version = cur and cur.version + 1 or 1
  local created = cur and cur.created or now_text
  local expires_text = expires and string.format('%d', expires) or ''
  stored[#stored + 1] = name
  stored[#stored + 1] = version .. ':' .. created .. ':' .. now_text .. ':' .. expires_text .. ':' .. flag .. ':' .. payload
  if expires then
    if meta and expires < earliest_expiry then earliest_expiry, state_changed = expires, true end
    expiring[#expiring + 1] = expires
    expiring[#expiring + 1] = name
  elseif cur and cur.expires ~= '' then
    unexpiring[#unexpiring + 1] = name
  end
  out[#out + 1] = version
  out[#out + 1] = expires or -1
end
call_sliced('HSET', attrs, stored)
if #expiring > 0 then call_sliced('ZADD', expiry, expiring) end
if #unexpiring > 0 then call_sliced('ZREM', expiry, unexpiring) end

-- Without a renewal, a hash or zset this write created gets the expiry the others have.
if not renew(until_ms, idle_ms) then
  if size == 0 then redis.call('PEXPIREAT', attrs, keys_expire_at) end
  if #expiring > 0 and not zset_existed then redis.call('PEXPIREAT', expiry, keys_expire_at) end
end
-- events (events.lua)
events_add_records(current, stored)
events_flush(now, math.min(idle_ms, until_ms - now))
-- end events
return out
