/**
 * Lua scripts that keep a cached log consistent under concurrent writers and
 * readers on several instances. A log is four keys sharing one hash tag (so a
 * Redis Cluster keeps them in one slot):
 *   l  the visible log, a list: the head, then one element per entry;
 *   h  the same list, hidden while appends to it are announced;
 *   f  the floor: a length below which no reader may fill the log;
 *   p  open announcements: a sorted set of token → Redis time in ms.
 * Readers fetch l with one LRANGE; only these scripts change the keys, so a
 * reader always sees a whole log, and never one with an append in flight.
 * Announcements older than staleMs belong to writers that died; the scripts
 * discard them, after which a reader may fill the log again from the database.
 */

const prelude = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function open_announcements(p, stale_ms)
  redis.call('ZREMRANGEBYSCORE', p, '-inf', now_ms() - stale_ms)
  return redis.call('ZCARD', p)
end
local function push_all(key, first)
  local i = first
  while i <= #ARGV do
    local last = math.min(i + 999, #ARGV)
    redis.call('RPUSH', key, unpack(ARGV, i, last))
    i = last + 1
  end
end
`;

/** KEYS l h f p; ARGV ttlMs staleMs head entries…; returns 1 when stored. */
export const fillLogScript = `${prelude}
if open_announcements(KEYS[4], tonumber(ARGV[2])) > 0 then return 0 end
local len = #ARGV - 3
local f = redis.call('GET', KEYS[3])
if f and tonumber(f) > len then return 0 end
local existing = redis.call('LLEN', KEYS[1])
if existing > 0 and existing - 1 >= len then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
push_all(KEYS[1], 3)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`;

/** KEYS l h p; ARGV token staleMs: opens an announcement and hides the log. */
export const beginAppendScript = `${prelude}
open_announcements(KEYS[3], tonumber(ARGV[2]))
redis.call('ZADD', KEYS[3], now_ms(), ARGV[1])
redis.call('PEXPIRE', KEYS[3], 2 * tonumber(ARGV[2]))
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('RENAME', KEYS[1], KEYS[2]) end
return 1
`;

/**
 * KEYS l h f p; ARGV expectedLength ttlMs floorTtlMs token staleMs entries…;
 * closes the announcement `token` (may be empty); returns 1 appended,
 * 2 dropped (length differed), 0 absent.
 */
export const appendLogScript = `${prelude}
if ARGV[4] ~= '' then redis.call('ZREM', KEYS[4], ARGV[4]) end
local open = open_announcements(KEYS[4], tonumber(ARGV[5]))
local expected = tonumber(ARGV[1])
local new_len = expected + #ARGV - 5
local source = nil
if redis.call('EXISTS', KEYS[1]) == 1 then source = KEYS[1] elseif redis.call('EXISTS', KEYS[2]) == 1 then source = KEYS[2] end
if source and redis.call('LLEN', source) - 1 == expected then
  push_all(source, 6)
  redis.call('PEXPIRE', source, ARGV[2])
  if open == 0 and source == KEYS[2] then redis.call('RENAME', KEYS[2], KEYS[1]) end
  if open > 0 and source == KEYS[1] then redis.call('RENAME', KEYS[1], KEYS[2]) end
  return 1
end
redis.call('DEL', KEYS[1], KEYS[2])
local f = redis.call('GET', KEYS[3])
if (not f) or tonumber(f) < new_len then redis.call('SET', KEYS[3], new_len, 'PX', ARGV[3]) end
if source then return 2 end
return 0
`;

/** KEYS l h p; ARGV token staleMs drop(0|1): closes an announcement, dropping the log or showing it again. */
export const endAppendScript = `${prelude}
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[1], KEYS[2])
elseif open_announcements(KEYS[3], tonumber(ARGV[2])) == 0 and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RENAME', KEYS[2], KEYS[1])
end
return 1
`;
