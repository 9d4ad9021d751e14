import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { MemoryCache } from './memory.js';
import { RedisCache } from './redis.js';
import type { Cache } from './types.js';

/** Redis when REDIS_URL is set, else the in-process cache. Never fails: Redis may come later. */
export async function openCache(config: Config, logger: Logger): Promise<Cache> {
  if (config.redis.url === undefined) {
    return new MemoryCache({ maxEntries: config.cache.maxEntries, maxBytes: config.cache.maxBytes });
  }
  const cache = new RedisCache({ url: config.redis.url, commandTimeoutMs: config.redis.commandTimeoutMs, logger, keyPrefix: `${config.redis.keyPrefix}:` });
  await cache.connect();
  return cache;
}
