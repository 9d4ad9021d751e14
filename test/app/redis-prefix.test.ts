/** EXAI_REDIS_PREFIX: every key exai writes to Redis starts with it, so deployments can share one Redis. */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../../src/app/services.js';
import { loadConfig } from '../../src/config.js';
import { externalBackends } from '../support/env.js';
import { createPostgresDatabase, silentLogger, type TestDatabase } from '../support/backends.js';

const external = externalBackends();

describe.runIf(external !== undefined)('the Redis key prefix', () => {
  let database: TestDatabase;
  let services: Services;
  let redis: Redis;
  const prefix = `exai-prefix-${process.pid}-${Date.now()}`;

  beforeAll(async () => {
    database = await createPostgresDatabase();
    const config = loadConfig({ DATABASE_URL: database.location, REDIS_URL: external!.redisUrl, EXAI_REDIS_PREFIX: prefix, EXAI_HOME: '/tmp' }, { cwd: '/tmp' });
    services = await createServices(config, silentLogger, { migrate: true });
    redis = new Redis(external!.redisUrl);
  });

  afterAll(async () => {
    await services?.close();
    await redis?.quit();
    await database?.destroy();
  });

  it('puts the cache under <prefix>: and the rate limits under <prefix>-rl:', async () => {
    const thread = await services.conversations.createThread(services.localUser.id, { title: 'prefixed' });
    await services.conversations.appendTurn(services.localUser.id, thread.id, { role: 'user', content: 'hello' });
    await services.conversations.loadThread(services.localUser.id, thread.id);
    const permit = await services.limits.admit('user:prefix-test', { requestsPerMinute: 10, tokensPerMinute: 0, concurrentCalls: 2 });
    const cacheKeys = await redis.keys(`${prefix}:*`);
    const limitKeys = await redis.keys(`${prefix}-rl:*`);
    await permit.release();
    expect(cacheKeys.length).toBeGreaterThan(0);
    expect(limitKeys.length).toBeGreaterThan(0);
    expect(await redis.keys('exai:*').then((keys) => keys.filter((key) => key.includes(thread.id)))).toEqual([]);
  });
});
