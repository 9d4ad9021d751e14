/**
 * Lua scripts that keep a cached log consistent under concurrent writers and
 * readers on several instances. A log is four keys sharing one hash tag (so a
 * Redis Cluster keeps them in one slot): n (length), h (head), l (entries), f (floor).
 */

/** KEYS n h l; returns {head, entries} or nil when absent or incomplete. */
export const getLogScript = `
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

/** KEYS n h l f; ARGV ttlMs head entries…; returns 1 when stored. */
export const fillLogScript = `
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

/**
 * KEYS n h l f; ARGV expectedLength ttlMs floorTtlMs entries…;
 * returns 1 appended, 2 dropped (length differed), 0 absent.
 */
export const appendLogScript = `
local expected = tonumber(ARGV[1])
local newLen = expected + #ARGV - 3
local n = redis.call('GET', KEYS[1])
if n and tonumber(n) == expected then
  local i = 4
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
