/**
 * Redis going away and coming back, on private redis-server processes (never the
 * shared test server, which other suites use in parallel).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { RedisCache } from '../../src/cache/redis.js';
import { waitFor } from '../support/backends.js';
import { externalBackends } from '../support/env.js';
import { captureLogs, type CapturedLogs } from '../support/logs.js';
import { freePort, PrivateRedis, redisServer } from '../support/private-redis.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

// Where Redis is expected (TEST_REDIS_URL set, always in CI) a missing binary is a failure, not a skip.
const required = externalBackends() !== undefined;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));


describe.skipIf(redisServer === undefined && !required)('Redis cache through outages', () => {
  const servers: PrivateRedis[] = [];
  const caches: RedisCache[] = [];

  async function privateRedis(password?: string): Promise<PrivateRedis> {
    const server = new PrivateRedis(await freePort(), password);
    servers.push(server);
    return server;
  }

  function openCache(url: string, logs: CapturedLogs): RedisCache {
    const cache = new RedisCache({ url, commandTimeoutMs: 500, logger: logs.logger, keyPrefix: 'exai-outage:' });
    caches.push(cache);
    return cache;
  }

  const warnings = (logs: CapturedLogs) => logs.lines().filter((line) => line.level === 40);
  const outageWarnings = (logs: CapturedLogs) => warnings(logs).filter((line) => String(line.msg).startsWith('Redis unavailable'));
  const backLines = (logs: CapturedLogs) => logs.lines().filter((line) => line.level === 30 && String(line.msg).startsWith('Redis is back'));

  afterAll(async () => {
    for (const cache of caches) await cache.close();
    for (const server of servers) await server.destroy();
  });

  it('has redis-server to run these tests with', () => {
    expect(redisServer, 'redis-server must be installed where TEST_REDIS_URL is set').toBeDefined();
  });

  it('starts degraded when Redis is down, logs one warning, and recovers when Redis comes up', async () => {
    const server = await privateRedis('hunter2');
    const logs = captureLogs();
    const cache = openCache(server.url, logs);

    await expect(cache.connect()).resolves.toBeUndefined();
    const health = cache.health();
    expect(health.backend).toBe('redis');
    expect(health.status).toBe('degraded');
    expect(health.detail).toMatch(/^Redis unavailable: \S/);

    // Every operation degrades to a miss or a no-op, none throws.
    for (let round = 0; round < 20; round += 1) {
      expect(await cache.get('value')).toBeUndefined();
      expect(await cache.getLog('log')).toBeUndefined();
      await expect(cache.set('value', 'v', 60_000)).resolves.toBeUndefined();
      expect(await cache.fillLog('log', { head: 'h', entries: ['a'] }, 60_000)).toBe(false);
      expect(await cache.appendLog('log', 1, ['b'], 60_000)).toBe('unavailable');
      await expect(cache.delete('value')).resolves.toBeUndefined();
      await expect(cache.deleteLog('log')).resolves.toBeUndefined();
    }
    // Let the client fail a few reconnection attempts too.
    await sleep(400);
    expect(cache.health().status).toBe('degraded');
    expect(outageWarnings(logs)).toHaveLength(1);
    expect(warnings(logs)).toHaveLength(1);
    const warning = outageWarnings(logs)[0]!;
    expect(warning.redis).toBe(`redis://127.0.0.1:${server.port}`);
    expect(typeof warning.reason).toBe('string');
    expect(JSON.stringify(logs.lines())).not.toContain('hunter2');
    expect(cache.health().detail).not.toContain('hunter2');
    expect(backLines(logs)).toHaveLength(0);

    await server.start();
    await waitFor(() => cache.health().status === 'ok', 10_000, 'the cache to find Redis again');
    expect(cache.health()).toEqual({ backend: 'redis', status: 'ok' });
    expect(backLines(logs)).toHaveLength(1);
    expect(outageWarnings(logs)).toHaveLength(1);

    await cache.set('value', 'after recovery', 60_000);
    expect(await cache.get('value')).toBe('after recovery');
    expect(await cache.fillLog('fresh', { head: 'h', entries: ['a'] }, 60_000)).toBe(true);
    expect(await cache.appendLog('fresh', 1, ['b'], 60_000)).toBe('appended');
    expect(await cache.getLog('fresh')).toEqual({ head: 'h', entries: ['a', 'b'] });

    // A second outage is a second warning; a second recovery a second info line.
    await server.kill();
    await waitFor(() => cache.health().status === 'degraded', 5000, 'the cache to notice Redis is gone');
    expect(await cache.get('value')).toBeUndefined();
    expect(outageWarnings(logs)).toHaveLength(2);
    await server.start();
    await waitFor(() => cache.health().status === 'ok', 10_000, 'the cache to find Redis again');
    expect(backLines(logs)).toHaveLength(2);
    expect(outageWarnings(logs)).toHaveLength(2);
  });

  it('never serves a log written before an outage in which a write to it failed', async () => {
    const server = await privateRedis();
    await server.start();
    const logs = captureLogs();
    const cache = openCache(server.url, logs);
    await cache.connect();
    await waitFor(() => cache.health().status === 'ok', 5000, 'the cache to connect');
    expect(logs.lines()).toHaveLength(0);

    expect(await cache.fillLog('thread', { head: 'h', entries: ['one', 'two'] }, 600_000)).toBe(true);
    expect(await cache.fillLog('untouched', { head: 'h', entries: ['kept'] }, 600_000)).toBe(true);
    await cache.set('value', 'before', 600_000);
    // Persist both so that they survive the crash: the restarted server serves the pre-outage state.
    expect(await server.command('SAVE')).toBe('OK');

    await server.kill();
    await waitFor(() => cache.health().status === 'degraded', 5000, 'the cache to notice Redis is gone');
    // The turn reaches Postgres but not Redis; so does a changed value.
    expect(await cache.appendLog('thread', 2, ['three'], 600_000)).toBe('unavailable');
    await cache.set('value', 'during', 600_000);
    expect(await cache.getLog('thread')).toBeUndefined();
    expect(await cache.get('value')).toBeUndefined();
    expect(outageWarnings(logs)).toHaveLength(1);

    await server.start();
    await waitFor(() => cache.health().status === 'ok', 10_000, 'the cache to find Redis again');
    expect(backLines(logs)).toHaveLength(1);
    expect(outageWarnings(logs)).toHaveLength(1);

    // The restart brought the old data back from disk, but a restarted Redis may have lost writes
    // since its snapshot that no one here saw fail: the whole namespace is dropped, stale or not.
    expect(await server.command('DBSIZE')).toBe(0);
    expect(await cache.getLog('untouched')).toBeUndefined();
    expect(await cache.getLog('thread')).toBeUndefined();
    expect(await cache.get('value')).toBeUndefined();
    // A fresh read from the source of truth fills it again.
    expect(await cache.fillLog('thread', { head: 'h', entries: ['one', 'two', 'three'] }, 600_000)).toBe(true);
    expect(await cache.getLog('thread')).toEqual({ head: 'h', entries: ['one', 'two', 'three'] });
  });

  it('drops only the keys whose writes failed when the same Redis comes back after a partition', async () => {
    const server = await privateRedis();
    await server.start();
    const proxy = await startTcpProxy('127.0.0.1', server.port);
    try {
      const logs = captureLogs();
      const cache = openCache(`redis://127.0.0.1:${proxy.port}`, logs);
      await cache.connect();
      await waitFor(() => cache.health().status === 'ok', 5000, 'the cache to connect');
      expect(await cache.fillLog('thread', { head: 'h', entries: ['one', 'two'] }, 600_000)).toBe(true);
      expect(await cache.fillLog('untouched', { head: 'h', entries: ['kept'] }, 600_000)).toBe(true);

      await proxy.cut();
      await waitFor(() => cache.health().status === 'degraded', 5000, 'the cache to notice the partition');
      expect(await cache.appendLog('thread', 2, ['three'], 600_000)).toBe('unavailable');

      await proxy.restore();
      await waitFor(() => cache.health().status === 'ok', 10_000, 'the cache to find Redis again');
      expect(await cache.getLog('thread')).toBeUndefined(); // its write failed: dropped
      expect(await cache.getLog('untouched')).toEqual({ head: 'h', entries: ['kept'] }); // the same server kept it
    } finally {
      await proxy.close();
    }
  });
});
