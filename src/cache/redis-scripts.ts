/**
 * Lua scripts that keep a cached log consistent under concurrent writers and
 * readers on several instances. A log is five keys sharing one hash tag (so a
 * Redis Cluster keeps them in one slot): n (length), h (head), l (entries),
 * f (floor) and p (open append announcements: token → Redis time in ms).
 */

const redisNowMs = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/**
 * KEYS n h l p; ARGV staleMs; returns {head, entries} or nil when absent,
 * incomplete, or an append is announced (a stale announcement drops the log).
 */
export const getLogScript = `${redisNowMs}
if redis.call('ZCARD', KEYS[4]) > 0 then
  local cutoff = now_ms() - tonumber(ARGV[1])
  if #redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', cutoff, 'LIMIT', 0, 1) > 0 then
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
    redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', cutoff)
  end
  return nil
end
local n = redis.call('GET', KEYS[1])
if not n then return nil end
local h = redis.call('GET', KEYS[2])
if not h then return nil end
local len = tonumber(n)
if len == 0 then return {h, {}} end
local l = redis.call('LRANGE', KEYS[3], 0, len - 1)
if #l < len then return nil end
return {h, l}
`;

/** KEYS n h l f p; ARGV ttlMs head entries…; returns 1 when stored. */
export const fillLogScript = `
if redis.call('ZCARD', KEYS[5]) > 0 then return 0 end
local len = #ARGV - 2
local f = redis.call('GET', KEYS[4])
if f and tonumber(f) > len then return 0 end
local n = redis.call('GET', KEYS[1])
if n and tonumber(n) >= len then return 0 end
redis.call('DEL', KEYS[3])
local i = 3
while i <= #ARGV do
  local last = math.min(i + 999, #ARGV)
  redis.call('RPUSH', KEYS[3], unpack(ARGV, i, last))
  i = last + 1
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[1])
redis.call('SET', KEYS[1], len, 'PX', ARGV[1])
if len > 0 then redis.call('PEXPIRE', KEYS[3], ARGV[1]) end
return 1
`;

/** KEYS p; ARGV token ttlMs: opens an announcement. */
export const beginAppendScript = `${redisNowMs}
redis.call('ZADD', KEYS[1], now_ms(), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

/**
 * KEYS n h l f p; ARGV expectedLength ttlMs floorTtlMs token entries…;
 * closes the announcement `token` (may be empty); returns 1 appended,
 * 2 dropped (length differed), 0 absent.
 */
export const appendLogScript = `
if ARGV[4] ~= '' then redis.call('ZREM', KEYS[5], ARGV[4]) end
local expected = tonumber(ARGV[1])
local newLen = expected + #ARGV - 4
local n = redis.call('GET', KEYS[1])
if n and tonumber(n) == expected then
  local i = 5
  while i <= #ARGV do
    local last = math.min(i + 999, #ARGV)
    redis.call('RPUSH', KEYS[3], unpack(ARGV, i, last))
    i = last + 1
  end
  redis.call('SET', KEYS[1], newLen, 'PX', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
  return 1
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local f = redis.call('GET', KEYS[4])
if (not f) or tonumber(f) < newLen then redis.call('SET', KEYS[4], newLen, 'PX', ARGV[3]) end
if n then return 2 end
return 0
`;
