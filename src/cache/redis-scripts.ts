/**
 * Lua scripts that keep a cached log consistent under concurrent writers and
 * readers on several instances. A log is three keys sharing one hash tag (so a
 * Redis Cluster keeps them in one slot):
 *   l  a list: the head, then one element per entry (its length is 1 + entries);
 *   f  the floor: a length below which no reader may fill the log;
 *   p  open append announcements: a sorted set of token → Redis time in ms.
 * Every change to l happens inside one of these scripts, so a reader that
 * fetches l in one command always sees a whole log.
 */

const redisNowMs = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/** KEYS l p; ARGV staleMs: drops the log if an announcement went stale (its writer died). */
export const dropIfStaleScript = `${redisNowMs}
local cutoff = now_ms() - tonumber(ARGV[1])
if #redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff, 'LIMIT', 0, 1) > 0 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
  return 1
end
return 0
`;

/** KEYS l f p; ARGV ttlMs head entries…; returns 1 when stored. */
export const fillLogScript = `
if redis.call('ZCARD', KEYS[3]) > 0 then return 0 end
local len = #ARGV - 2
local f = redis.call('GET', KEYS[2])
if f and tonumber(f) > len then return 0 end
local existing = redis.call('LLEN', KEYS[1])
if existing > 0 and existing - 1 >= len then return 0 end
redis.call('DEL', KEYS[1])
local i = 2
while i <= #ARGV do
  local last = math.min(i + 999, #ARGV)
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, last))
  i = last + 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`;

/** KEYS p; ARGV token ttlMs: opens an announcement. */
export const beginAppendScript = `${redisNowMs}
redis.call('ZADD', KEYS[1], now_ms(), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

/**
 * KEYS l f p; ARGV expectedLength ttlMs floorTtlMs token entries…;
 * closes the announcement `token` (may be empty); returns 1 appended,
 * 2 dropped (length differed), 0 absent.
 */
export const appendLogScript = `
if ARGV[4] ~= '' then redis.call('ZREM', KEYS[3], ARGV[4]) end
local expected = tonumber(ARGV[1])
local newLen = expected + #ARGV - 4
local existing = redis.call('LLEN', KEYS[1])
if existing > 0 and existing - 1 == expected then
  local i = 5
  while i <= #ARGV do
    local last = math.min(i + 999, #ARGV)
    redis.call('RPUSH', KEYS[1], unpack(ARGV, i, last))
    i = last + 1
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
redis.call('DEL', KEYS[1])
local f = redis.call('GET', KEYS[2])
if (not f) or tonumber(f) < newLen then redis.call('SET', KEYS[2], newLen, 'PX', ARGV[3]) end
if existing > 0 then return 2 end
return 0
`;
