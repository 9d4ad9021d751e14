import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCache } from '../../src/cache/memory.js';
import { RedisCache } from '../../src/cache/redis.js';
import type { Cache, CachedLog } from '../../src/cache/types.js';
import { silentLogger, uniqueRedisPrefix, waitFor } from '../support/backends.js';
import { externalBackends } from '../support/env.js';

interface CacheBackend {
  name: 'memory' | 'redis';
  open(options?: { announcementStaleMs?: number }): Promise<Cache>;
  /** Removes whatever the suite left behind on a shared server. */
  cleanup(): Promise<void>;
}

const ttl = 60_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function entries(count: number, label = 'entry'): string[] {
  return Array.from({ length: count }, (_, index) => `${label} ${index}`);
}

function memoryBackend(): CacheBackend {
  return {
    name: 'memory',
    open: async (options = {}) => new MemoryCache({ maxEntries: 10_000, maxBytes: 64 * 1024 * 1024, ...options }),
    cleanup: async () => undefined,
  };
}

function redisBackend(url: string): CacheBackend {
  const prefix = uniqueRedisPrefix();
  return {
    name: 'redis',
    async open(options = {}) {
      const cache = new RedisCache({ url, commandTimeoutMs: 1000, logger: silentLogger, keyPrefix: prefix, ...options });
      await cache.connect();
      await waitFor(() => cache.health().status === 'ok', 5000, 'Redis to become ready');
      return cache;
    },
    async cleanup() {
      const admin = new Redis(url, { maxRetriesPerRequest: 1 });
      try {
        let cursor = '0';
        do {
          const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
          if (keys.length > 0) await admin.del(...keys);
          cursor = next;
        } while (cursor !== '0');
      } finally {
        admin.disconnect();
      }
    },
  };
}

function cacheBackends(): CacheBackend[] {
  const backends = [memoryBackend()];
  const external = externalBackends();
  if (external !== undefined) backends.push(redisBackend(external.redisUrl));
  return backends;
}

describe.each(cacheBackends())('cache on $name', (backend) => {
  let cache: Cache;
  let counter = 0;
  /** A key no other test of this suite uses. */
  const key = (label: string) => `${label}-${(counter += 1)}`;

  beforeAll(async () => {
    cache = await backend.open();
  });

  afterEach(() => {
    // No operation of a passing test may have knocked the cache into degraded mode.
    expect(cache.health()).toEqual({ backend: backend.name, status: 'ok' });
  });

  afterAll(async () => {
    await cache?.close();
    await backend.cleanup();
  });

  it('reports its backend', () => {
    expect(cache.backend).toBe(backend.name);
  });

  describe('values', () => {
    it('gets what was set, overwrites it, and deletes it', async () => {
      const k = key('value');
      expect(await cache.get(k)).toBeUndefined();
      await cache.set(k, 'first', ttl);
      expect(await cache.get(k)).toBe('first');
      await cache.set(k, 'second', ttl);
      expect(await cache.get(k)).toBe('second');
      await cache.delete(k);
      expect(await cache.get(k)).toBeUndefined();
      await cache.delete(k); // deleting what is absent is fine
      expect(await cache.get(k)).toBeUndefined();
    });

    it('keeps unicode, JSON and an empty string exactly', async () => {
      const text = JSON.stringify({ greeting: 'héllo wörld ✓ 日本語 🚀', nested: { quote: '"\\\n\t' }, list: [1, null, true] });
      const k = key('unicode');
      await cache.set(k, text, ttl);
      expect(await cache.get(k)).toBe(text);
      const empty = key('empty');
      await cache.set(empty, '', ttl);
      expect(await cache.get(empty)).toBe('');
    });

    it('forgets a value once its TTL has passed', async () => {
      const short = key('short');
      const long = key('long');
      await cache.set(short, 'soon gone', 80);
      await cache.set(long, 'stays', ttl);
      expect(await cache.get(short)).toBe('soon gone');
      await sleep(200);
      expect(await cache.get(short)).toBeUndefined();
      expect(await cache.get(long)).toBe('stays');
    });

    it('gives the TTL of the latest set', async () => {
      const k = key('reset');
      await cache.set(k, 'short', 80);
      await cache.set(k, 'long', ttl);
      await sleep(200);
      expect(await cache.get(k)).toBe('long');
    });
  });

  describe('logs', () => {
    it('misses a log that was never filled', async () => {
      expect(await cache.getLog(key('never'))).toBeUndefined();
    });

    it('fills a log, then appends when the expected length matches', async () => {
      const k = key('fill-append');
      expect(await cache.fillLog(k, { head: 'thread header', entries: ['one', 'two'] }, ttl)).toBe(true);
      expect(await cache.getLog(k)).toEqual({ head: 'thread header', entries: ['one', 'two'] });
      expect(await cache.appendLog(k, 2, ['three'], ttl)).toBe('appended');
      expect(await cache.appendLog(k, 3, ['four', 'five'], ttl)).toBe('appended');
      expect(await cache.getLog(k)).toEqual({ head: 'thread header', entries: ['one', 'two', 'three', 'four', 'five'] });
    });

    it('hands out a copy: changing a returned log does not change the cache', async () => {
      const k = key('copy');
      const log: CachedLog = { head: 'h', entries: ['a', 'b'] };
      await cache.fillLog(k, log, ttl);
      log.entries.push('pushed after fill');
      const first = await cache.getLog(k);
      first!.entries.push('pushed after get');
      expect(await cache.getLog(k)).toEqual({ head: 'h', entries: ['a', 'b'] });
    });

    it('drops the log on a mismatched append and refuses fills shorter than the floor', async () => {
      const k = key('mismatch');
      await cache.fillLog(k, { head: 'h', entries: entries(3) }, ttl);
      // A writer thinks the log has 5 entries and adds one: the cache cannot be patched.
      expect(await cache.appendLog(k, 5, ['sixth'], ttl)).toBe('dropped');
      expect(await cache.getLog(k)).toBeUndefined();
      // A reader that loaded before that append must not bring its older snapshot back.
      expect(await cache.fillLog(k, { head: 'h', entries: entries(3) }, ttl)).toBe(false);
      expect(await cache.fillLog(k, { head: 'h', entries: entries(5) }, ttl)).toBe(false);
      expect(await cache.getLog(k)).toBeUndefined();
      // A reader that saw the append (or later ones) is welcome.
      expect(await cache.fillLog(k, { head: 'h2', entries: entries(6) }, ttl)).toBe(true);
      expect(await cache.getLog(k)).toEqual({ head: 'h2', entries: entries(6) });
      expect(await cache.appendLog(k, 6, ['seventh'], ttl)).toBe('appended');
      expect((await cache.getLog(k))?.entries).toHaveLength(7);
    });

    it('drops a log appended with a smaller expected length too', async () => {
      const k = key('behind');
      await cache.fillLog(k, { head: 'h', entries: entries(4) }, ttl);
      expect(await cache.appendLog(k, 2, ['x'], ttl)).toBe('dropped');
      expect(await cache.getLog(k)).toBeUndefined();
      expect(await cache.fillLog(k, { head: 'h', entries: entries(4) }, ttl)).toBe(true);
    });

    it('accepts a fill longer than the floor', async () => {
      const k = key('above-floor');
      expect(await cache.appendLog(k, 1, ['b'], ttl)).toBe('absent');
      expect(await cache.fillLog(k, { head: 'h', entries: entries(9) }, ttl)).toBe(true);
      expect((await cache.getLog(k))?.entries).toEqual(entries(9));
    });

    it('answers absent when appending to no log, and still sets the floor', async () => {
      const k = key('absent');
      expect(await cache.appendLog(k, 2, ['c', 'd'], ttl)).toBe('absent');
      expect(await cache.getLog(k)).toBeUndefined();
      expect(await cache.fillLog(k, { head: 'h', entries: ['a', 'b', 'c'] }, ttl)).toBe(false);
      expect(await cache.getLog(k)).toBeUndefined();
      expect(await cache.fillLog(k, { head: 'h', entries: ['a', 'b', 'c', 'd'] }, ttl)).toBe(true);
      expect(await cache.getLog(k)).toEqual({ head: 'h', entries: ['a', 'b', 'c', 'd'] });
    });

    it('never lowers a floor', async () => {
      const k = key('floor-max');
      expect(await cache.appendLog(k, 10, ['x'], ttl)).toBe('absent'); // floor 11
      expect(await cache.appendLog(k, 1, ['x'], ttl)).toBe('absent'); // would be 2, floor stays 11
      expect(await cache.fillLog(k, { head: 'h', entries: entries(5) }, ttl)).toBe(false);
      expect(await cache.fillLog(k, { head: 'h', entries: entries(10) }, ttl)).toBe(false);
      expect(await cache.fillLog(k, { head: 'h', entries: entries(11) }, ttl)).toBe(true);
    });

    it('does not overwrite a cached log that has at least as many entries', async () => {
      const k = key('no-overwrite');
      expect(await cache.fillLog(k, { head: 'current', entries: ['a', 'b', 'c'] }, ttl)).toBe(true);
      expect(await cache.fillLog(k, { head: 'older', entries: ['a', 'b'] }, ttl)).toBe(false);
      expect(await cache.fillLog(k, { head: 'same length', entries: ['x', 'y', 'z'] }, ttl)).toBe(false);
      expect(await cache.getLog(k)).toEqual({ head: 'current', entries: ['a', 'b', 'c'] });
      expect(await cache.fillLog(k, { head: 'newer', entries: ['a', 'b', 'c', 'd'] }, ttl)).toBe(true);
      expect(await cache.getLog(k)).toEqual({ head: 'newer', entries: ['a', 'b', 'c', 'd'] });
    });

    it('round-trips a log with no entries, and appends to it', async () => {
      const k = key('empty-log');
      expect(await cache.fillLog(k, { head: 'just a header', entries: [] }, ttl)).toBe(true);
      expect(await cache.getLog(k)).toEqual({ head: 'just a header', entries: [] });
      expect(await cache.fillLog(k, { head: 'another header', entries: [] }, ttl)).toBe(false);
      expect(await cache.appendLog(k, 0, [], ttl)).toBe('appended');
      expect(await cache.getLog(k)).toEqual({ head: 'just a header', entries: [] });
      expect(await cache.appendLog(k, 0, ['first'], ttl)).toBe('appended');
      expect(await cache.getLog(k)).toEqual({ head: 'just a header', entries: ['first'] });
    });

    it('round-trips an empty head and empty entries', async () => {
      const k = key('empty-strings');
      expect(await cache.fillLog(k, { head: '', entries: ['', 'x', ''] }, ttl)).toBe(true);
      expect(await cache.getLog(k)).toEqual({ head: '', entries: ['', 'x', ''] });
      expect(await cache.appendLog(k, 3, [''], ttl)).toBe('appended');
      expect(await cache.getLog(k)).toEqual({ head: '', entries: ['', 'x', '', ''] });
    });

    it('keeps unicode and JSON entries exactly', async () => {
      const head = JSON.stringify({ id: 't-1', title: 'Überprüfung — “quotes” ✓', metadata: { emoji: '🧪🚀', cjk: '会話' } });
      const turns = [
        JSON.stringify({ role: 'user', content: 'Zürich, naïve café, Ελληνικά, עברית, العربية' }),
        JSON.stringify({ role: 'assistant', content: 'line 1\nline 2\ttab "quoted" \\backslash\\ \u0001 \u2028 \u2029', files: ['src/ä.ts'] }),
        '{"raw":"\\ud83d\\ude80 escaped","n":1.5e-7}',
        '  leading and trailing spaces  ',
        '🏳️‍🌈👩‍👩‍👧‍👦',
      ];
      const k = key('unicode-log');
      expect(await cache.fillLog(k, { head, entries: turns.slice(0, 3) }, ttl)).toBe(true);
      expect(await cache.appendLog(k, 3, turns.slice(3), ttl)).toBe('appended');
      const log = await cache.getLog(k);
      expect(log).toEqual({ head, entries: turns });
      expect(log!.entries.map((entry) => entry.length)).toEqual(turns.map((entry) => entry.length));
      expect(JSON.parse(log!.entries[1]!)).toEqual(JSON.parse(turns[1]!));
    });

    it('round-trips logs of more than 1000 entries, filled and appended in one call', async () => {
      const k = key('large');
      const filled = entries(2345, 'filled');
      expect(await cache.fillLog(k, { head: 'big', entries: filled }, ttl)).toBe(true);
      expect(await cache.getLog(k)).toEqual({ head: 'big', entries: filled });
      const appended = entries(2001, 'appended');
      expect(await cache.appendLog(k, filled.length, appended, ttl)).toBe('appended');
      const log = await cache.getLog(k);
      expect(log?.entries).toHaveLength(filled.length + appended.length);
      expect(log).toEqual({ head: 'big', entries: [...filled, ...appended] });
      // Exactly at the chunk boundary.
      const boundary = key('boundary');
      expect(await cache.fillLog(boundary, { head: 'b', entries: entries(1000) }, ttl)).toBe(true);
      expect(await cache.appendLog(boundary, 1000, entries(1000, 'more'), ttl)).toBe('appended');
      expect(await cache.getLog(boundary)).toEqual({ head: 'b', entries: [...entries(1000), ...entries(1000, 'more')] });
    });

    it('forgets a log once its TTL has passed, and lets it be filled again', async () => {
      const k = key('log-ttl');
      const empty = key('empty-log-ttl');
      expect(await cache.fillLog(k, { head: 'h', entries: ['a', 'b'] }, 80)).toBe(true);
      expect(await cache.fillLog(empty, { head: 'h', entries: [] }, 80)).toBe(true);
      expect(await cache.getLog(k)).toBeDefined();
      await sleep(200);
      expect(await cache.getLog(k)).toBeUndefined();
      expect(await cache.getLog(empty)).toBeUndefined();
      // An expired log is absent, so a fill of any length is taken.
      expect(await cache.fillLog(k, { head: 'h', entries: ['a'] }, ttl)).toBe(true);
      expect(await cache.getLog(k)).toEqual({ head: 'h', entries: ['a'] });
    });

    it('extends the TTL of a log on append', async () => {
      const k = key('log-ttl-extend');
      await cache.fillLog(k, { head: 'h', entries: ['a'] }, 300);
      await sleep(150);
      expect(await cache.appendLog(k, 1, ['b'], ttl)).toBe('appended');
      await sleep(300);
      expect(await cache.getLog(k)).toEqual({ head: 'h', entries: ['a', 'b'] });
    });

    it('deletes a log, after which an append finds it absent', async () => {
      const k = key('delete-log');
      await cache.fillLog(k, { head: 'h', entries: ['a', 'b'] }, ttl);
      await cache.deleteLog(k);
      expect(await cache.getLog(k)).toBeUndefined();
      await cache.deleteLog(k); // twice is fine
      expect(await cache.appendLog(k, 2, ['c'], ttl)).toBe('absent');
      expect(await cache.getLog(k)).toBeUndefined();
      // deleteLog leaves other keys alone.
      const other = key('delete-other');
      await cache.fillLog(other, { head: 'h', entries: ['kept'] }, ttl);
      await cache.deleteLog(key('delete-unrelated'));
      expect(await cache.getLog(other)).toEqual({ head: 'h', entries: ['kept'] });
    });

    it('keeps logs of different keys apart', async () => {
      const a = key('apart-a');
      const b = key('apart-b');
      await cache.fillLog(a, { head: 'A', entries: ['a1'] }, ttl);
      await cache.fillLog(b, { head: 'B', entries: ['b1', 'b2'] }, ttl);
      expect(await cache.appendLog(a, 2, ['wrong'], ttl)).toBe('dropped');
      expect(await cache.getLog(a)).toBeUndefined();
      expect(await cache.getLog(b)).toEqual({ head: 'B', entries: ['b1', 'b2'] });
    });

    it('stays consistent under concurrent appends racing a fill', async () => {
      const k = key('race');
      await cache.fillLog(k, { head: 'h', entries: entries(2) }, ttl);
      const outcomes = await Promise.all([
        cache.appendLog(k, 2, ['x'], ttl),
        cache.appendLog(k, 2, ['y'], ttl), // loses the race: same expected length
        cache.fillLog(k, { head: 'h', entries: entries(2) }, ttl),
      ]);
      expect(outcomes.slice(0, 2).sort()).toEqual(['appended', 'dropped']);
      // Whoever won, the cache never holds a log a later append cannot trust.
      const log = await cache.getLog(k);
      expect(log).toBeUndefined();
      expect(await cache.fillLog(k, { head: 'h', entries: entries(2) }, ttl)).toBe(false);
      expect(await cache.fillLog(k, { head: 'h', entries: entries(3) }, ttl)).toBe(true);
    });
  });

  describe('append announcements', () => {
    it('hides an announced log and refuses fills until the append settles it', async () => {
      const k = key('announced');
      await cache.fillLog(k, { head: 'h', entries: ['a', 'b'] }, ttl);
      const token = await cache.beginAppend(k);
      expect(typeof token).toBe('string');
      expect(await cache.getLog(k)).toBeUndefined();
      expect(await cache.fillLog(k, { head: 'h', entries: ['a', 'b', 'c'] }, ttl)).toBe(false);
      expect(await cache.appendLog(k, 2, ['c'], ttl, token)).toBe('appended');
      expect(await cache.getLog(k)).toEqual({ head: 'h', entries: ['a', 'b', 'c'] });
    });

    it('keeps the log hidden while any announcement is still open', async () => {
      const k = key('two-announcements');
      await cache.fillLog(k, { head: 'h', entries: ['a'] }, ttl);
      const first = await cache.beginAppend(k);
      const second = await cache.beginAppend(k);
      expect(first).not.toBe(second);
      expect(await cache.appendLog(k, 1, ['b'], ttl, first)).toBe('appended');
      expect(await cache.getLog(k)).toBeUndefined();
      // An append without a token closes nothing.
      expect(await cache.appendLog(k, 2, ['c'], ttl)).toBe('appended');
      expect(await cache.getLog(k)).toBeUndefined();
      await cache.endAppend(k, second, { drop: false });
      expect(await cache.getLog(k)).toEqual({ head: 'h', entries: ['a', 'b', 'c'] });
    });

    it('ends an announcement keeping the log, or dropping it when the write’s outcome is unknown', async () => {
      const k = key('end-append');
      await cache.fillLog(k, { head: 'h', entries: ['a', 'b'] }, ttl);
      await cache.endAppend(k, await cache.beginAppend(k), { drop: false });
      expect(await cache.getLog(k)).toEqual({ head: 'h', entries: ['a', 'b'] });
      await cache.endAppend(k, await cache.beginAppend(k), { drop: true });
      expect(await cache.getLog(k)).toBeUndefined();
      // Dropping sets no floor: the next read from the source of truth fills it.
      expect(await cache.fillLog(k, { head: 'h', entries: ['a', 'b'] }, ttl)).toBe(true);
      expect(await cache.getLog(k)).toEqual({ head: 'h', entries: ['a', 'b'] });
    });

    it('blocks a fill of an absent log while announced, and the append then sets the floor', async () => {
      const k = key('announced-absent');
      const token = await cache.beginAppend(k);
      expect(await cache.fillLog(k, { head: 'h', entries: ['a'] }, ttl)).toBe(false);
      expect(await cache.appendLog(k, 1, ['b'], ttl, token)).toBe('absent');
      expect(await cache.fillLog(k, { head: 'h', entries: ['a'] }, ttl)).toBe(false);
      expect(await cache.fillLog(k, { head: 'h', entries: ['a', 'b'] }, ttl)).toBe(true);
      expect(await cache.getLog(k)).toEqual({ head: 'h', entries: ['a', 'b'] });
    });
  });

  it('reports ok health', () => {
    expect(cache.health()).toEqual({ backend: backend.name, status: 'ok' });
  });
});

describe('MemoryCache bounds', () => {
  it('holds at most maxEntries, evicting the least recently used', async () => {
    const cache = new MemoryCache({ maxEntries: 3, maxBytes: 1024 * 1024 });
    await cache.set('a', '1', ttl);
    await cache.set('b', '2', ttl);
    await cache.fillLog('c', { head: 'h', entries: ['3'] }, ttl);
    await cache.set('d', '4', ttl);
    expect(await cache.get('a')).toBeUndefined();
    expect(await cache.get('b')).toBe('2');
    expect(await cache.getLog('c')).toEqual({ head: 'h', entries: ['3'] });
    expect(await cache.get('d')).toBe('4');
    // Reading b made it recent, so c (then d) is the oldest now.
    await cache.get('b');
    await cache.get('d');
    await cache.set('e', '5', ttl);
    expect(await cache.getLog('c')).toBeUndefined();
    expect(await cache.get('b')).toBe('2');
    expect(await cache.get('d')).toBe('4');
    expect(await cache.get('e')).toBe('5');
    await cache.close();
  });

  it('holds at most maxBytes of text, evicting the oldest to make room', async () => {
    const cache = new MemoryCache({ maxEntries: 1000, maxBytes: 100 });
    await cache.set('a', 'x'.repeat(40), ttl);
    await cache.set('b', 'y'.repeat(40), ttl);
    expect(await cache.get('a')).toHaveLength(40);
    await cache.set('c', 'z'.repeat(40), ttl); // 120 > 100: the oldest (b, a was just read) goes
    expect(await cache.get('b')).toBeUndefined();
    expect(await cache.get('a')).toHaveLength(40);
    expect(await cache.get('c')).toHaveLength(40);
    // A log counts its head and every entry.
    await cache.fillLog('log', { head: 'h'.repeat(10), entries: ['e'.repeat(25), 'e'.repeat(25)] }, ttl); // 60
    expect(await cache.getLog('log')).toBeDefined();
    const present = [await cache.get('a'), await cache.get('c')].filter((value) => value !== undefined);
    expect(present).toHaveLength(1);
    // Appending past the bound evicts others, never leaving more than maxBytes held.
    expect(await cache.appendLog('log', 2, ['e'.repeat(30)], ttl)).toBe('appended');
    expect(await cache.getLog('log')).toEqual({ head: 'h'.repeat(10), entries: ['e'.repeat(25), 'e'.repeat(25), 'e'.repeat(30)] });
    expect(await cache.get('a')).toBeUndefined();
    expect(await cache.get('c')).toBeUndefined();
    await cache.close();
  });

  it('keeps nothing bigger than maxBytes on its own', async () => {
    const cache = new MemoryCache({ maxEntries: 1000, maxBytes: 100 });
    await cache.set('small', 'ok', ttl);
    await cache.set('huge', 'x'.repeat(101), ttl);
    expect(await cache.get('huge')).toBeUndefined();
    expect(await cache.get('small')).toBe('ok');
    await cache.fillLog('huge-log', { head: 'h', entries: ['x'.repeat(100)] }, ttl);
    expect(await cache.getLog('huge-log')).toBeUndefined();
    expect(await cache.get('small')).toBe('ok');
    await cache.close();
  });

  it('counts text in UTF-16 code units', async () => {
    const cache = new MemoryCache({ maxEntries: 1000, maxBytes: 10 });
    await cache.set('emoji', '🚀🚀🚀🚀🚀', ttl); // 10 code units: fits exactly
    expect(await cache.get('emoji')).toBe('🚀🚀🚀🚀🚀');
    await cache.set('one-more', 'x', ttl);
    expect(await cache.get('emoji')).toBeUndefined();
    await cache.close();
  });

  it('forgets everything on close', async () => {
    const cache = new MemoryCache({ maxEntries: 10, maxBytes: 1000 });
    await cache.set('a', '1', ttl);
    await cache.appendLog('log', 4, ['x'], ttl); // floor 5
    await cache.close();
    expect(await cache.get('a')).toBeUndefined();
    expect(await cache.fillLog('log', { head: 'h', entries: ['1'] }, ttl)).toBe(true);
  });
});

describe.each(cacheBackends())('abandoned announcements on $name', (backend) => {
  let cache: Cache;
  beforeAll(async () => {
    cache = await backend.open({ announcementStaleMs: 300 });
  });
  afterAll(async () => {
    await cache?.close();
    await backend.cleanup();
  });

  it('keeps a log whose writer died mid-append hidden, then lets it be filled afresh', async () => {
    await cache.fillLog('abandoned', { head: 'h', entries: ['a', 'b'] }, ttl);
    await cache.beginAppend('abandoned'); // the writer commits 'c' and dies before telling the cache
    expect(await cache.getLog('abandoned')).toBeUndefined();
    expect(await cache.fillLog('abandoned', { head: 'h', entries: ['a', 'b', 'c'] }, ttl)).toBe(false);
    await sleep(400);
    expect(await cache.getLog('abandoned')).toBeUndefined(); // never the stale two-entry copy
    expect(await cache.fillLog('abandoned', { head: 'h', entries: ['a', 'b', 'c'] }, ttl)).toBe(true);
    expect(await cache.getLog('abandoned')).toEqual({ head: 'h', entries: ['a', 'b', 'c'] });
  });
});
