/** How exai's Redis connections behave, shared by the cache and the rate limits. */
import type { RedisOptions } from 'ioredis';

/**
 * Nothing queues or retries while Redis is away, so a caller falls back at
 * once; reconnection runs in the background with a capped backoff.
 */
export function outageTolerantOptions(commandTimeoutMs: number): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: Math.max(1000, commandTimeoutMs * 4),
    retryStrategy: (attempt) => Math.min(100 * attempt, 2000),
    reconnectOnError: () => false,
  };
}
