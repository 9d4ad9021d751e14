/**
 * Redis dying under a running conversation store: calls keep working from
 * Postgres, and when Redis returns (with its old data) no stale thread is served.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { RedisCache } from '../../src/cache/redis.js';
import { ConversationStore } from '../../src/conversations/store.js';
import { ensureUser } from '../../src/users/users.js';
import { createPgliteDatabase, silentLogger, waitFor, type TestDatabase } from '../support/backends.js';
import { externalBackends } from '../support/env.js';
import { freePort, PrivateRedis, redisServer } from '../support/private-redis.js';

const required = externalBackends() !== undefined;

describe.skipIf(redisServer === undefined && !required)('conversation store while Redis goes away', () => {
  let database: TestDatabase | undefined;
  let redis: PrivateRedis | undefined;
  let cache: RedisCache | undefined;

  afterAll(async () => {
    await cache?.close();
    await redis?.destroy();
    await database?.destroy();
  });

  it('keeps appending and loading from Postgres, and serves no stale thread afterwards', async () => {
    database = await createPgliteDatabase();
    redis = new PrivateRedis(await freePort());
    await redis.start();
    cache = new RedisCache({ url: redis.url, commandTimeoutMs: 300, logger: silentLogger, keyPrefix: 'exai-store-outage:' });
    await cache.connect();
    await waitFor(() => cache!.health().status === 'ok', 5000, 'Redis ready');
    const store = new ConversationStore(database.db, cache, { cacheTtlMs: 600_000, maxMessageBytes: 1 << 20, maxThreadDepth: 10 }, silentLogger);
    const user = await ensureUser(database.db, 'outage');
    const thread = await store.createThread(user.id, {});
    await store.appendTurn(user.id, thread.id, { role: 'user', content: 'one' });
    await store.appendTurn(user.id, thread.id, { role: 'assistant', content: 'two' });
    await store.loadThread(user.id, thread.id);
    const key = `thread:${user.id}:${thread.id}`;
    await waitFor(async () => (await cache!.getLog(key))?.entries.length === 2, 5000, 'the thread to be cached');

    // Keep the two-turn copy on disk so a restarted Redis brings it back.
    await redis.command('SAVE');
    await redis.kill();
    await store.appendTurn(user.id, thread.id, { role: 'user', content: 'three' });
    const during = await store.loadThread(user.id, thread.id);
    expect(during.turns.map((turn) => turn.content)).toEqual(['one', 'two', 'three']);
    expect(cache.health().status).toBe('degraded');

    await redis.start();
    await waitFor(() => cache!.health().status === 'ok', 10_000, 'the cache to recover');
    const after = await store.loadThread(user.id, thread.id);
    expect(after.turns.map((turn) => turn.content)).toEqual(['one', 'two', 'three']);
    await store.appendTurn(user.id, thread.id, { role: 'assistant', content: 'four' });
    expect((await store.loadThread(user.id, thread.id)).turnCount).toBe(4);
  });
});
