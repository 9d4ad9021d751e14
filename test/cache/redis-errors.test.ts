/** Redis answering with an error is not an outage: the cache stays in use, and what the failed write touched is dropped. */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisCache } from '../../src/cache/redis.js';
import { MemoryCache } from '../../src/cache/memory.js';
import { uniqueRedisPrefix, waitFor } from '../support/backends.js';
import { externalBackends } from '../support/env.js';
import { captureLogs } from '../support/logs.js';

describe.runIf(externalBackends() !== undefined)('RedisCache when Redis refuses a command', () => {
  const prefix = uniqueRedisPrefix();
  const logs = captureLogs();
  let cache: RedisCache;
  let raw: Redis;

  beforeAll(async () => {
    const url = externalBackends()!.redisUrl;
    cache = new RedisCache({ url, commandTimeoutMs: 1000, logger: logs.logger, keyPrefix: prefix });
    await cache.connect();
    await waitFor(() => cache.health().status === 'ok', 5000, 'Redis ready');
    raw = new Redis(url);
  });

  afterAll(async () => {
    const keys = await raw.keys(`${prefix}*`);
    if (keys.length > 0) await raw.del(...keys);
    raw.disconnect();
    await cache.close();
  });

  it('stays healthy, drops the touched log, and keeps serving other keys', async () => {
    await cache.fillLog('good', { head: 'h', entries: ['a'] }, 60_000);
    await cache.fillLog('bad', { head: 'h', entries: ['a'] }, 60_000);
    // Corrupt the bad log's entry list so the append script fails inside Redis (WRONGTYPE).
    await raw.set(`${prefix}log:{bad}:l`, 'not a list');
    expect(await cache.appendLog('bad', 1, ['b'], 60_000)).toBe('unavailable');
    expect(cache.health().status).toBe('ok');
    expect(await cache.getLog('bad')).toBeUndefined();
    expect(await cache.getLog('good')).toEqual({ head: 'h', entries: ['a'] });
    expect(logs.lines().some((line) => line.msg === 'Redis refused a cache command')).toBe(true);
    expect(logs.lines().some((line) => line.msg === 'Redis unavailable: serving from Postgres until it returns')).toBe(false);
  });

  it('accepts a TTL below one millisecond as one millisecond, like the memory cache', async () => {
    const memory = new MemoryCache({ maxEntries: 10, maxBytes: 1000 });
    await cache.set('tiny-ttl', 'x', 0);
    await memory.set('tiny-ttl', 'x', 0);
    expect(cache.health().status).toBe('ok');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await cache.get('tiny-ttl')).toBeUndefined();
    expect(await memory.get('tiny-ttl')).toBeUndefined();
  });
});

describe('cache names', () => {
  it('keeps a value and a log of the same key apart in the memory cache, as Redis does', async () => {
    const memory = new MemoryCache({ maxEntries: 10, maxBytes: 10_000 });
    await memory.set('k', 'value', 60_000);
    await memory.fillLog('k', { head: 'h', entries: ['e'] }, 60_000);
    expect(await memory.get('k')).toBe('value');
    expect(await memory.getLog('k')).toEqual({ head: 'h', entries: ['e'] });
    await memory.deleteLog('k');
    expect(await memory.get('k')).toBe('value');
  });
});
