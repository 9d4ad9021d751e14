/**
 * The services one exai process runs with, built once from the configuration
 * and handed to the transports (HTTP, CLI, later MCP). No globals.
 */
import { openCache } from '../cache/open.js';
import type { Cache } from '../cache/types.js';
import type { Config } from '../config.js';
import { ConversationStore } from '../conversations/store.js';
import { migrate, migrationStatus } from '../db/migrate.js';
import { ExaiError } from '../errors.js';
import { openDatabase } from '../db/open.js';
import type { Database } from '../db/types.js';
import type { Logger } from '../logger.js';
import { ensureUser, findUserByHandle, type User } from '../users/users.js';
import { checkHealth, type HealthReport } from './health.js';
import { startPgliteMaintenance } from '../db/pglite-maintenance.js';
import { MemoryCallRecorder } from '../providers/call-recorder.js';
import { ProviderRouter } from '../providers/router.js';
import { RateLimits } from '../limits/rate-limits.js';

export interface Services {
  config: Config;
  logger: Logger;
  db: Database;
  cache: Cache;
  conversations: ConversationStore;
  /** Model calls: registry, clients, fallbacks, limits. */
  router: ProviderRouter;
  /** Requests, tokens and calls in flight per key or user, and per provider; shared through Redis. */
  limits: RateLimits;
  /** The latest provider calls, until the metrics work stores them. */
  calls: MemoryCallRecorder;
  /** The user that local mode and stdio act as (EXAI_USER). */
  localUser: User;
  /** The id of the user with this handle; the local user when none is named. */
  userIdFor(handle: string | undefined): Promise<string>;
  startedAt: number;
  health(): Promise<HealthReport>;
  close(): Promise<void>;
}

export interface CreateServicesOptions {
  /** Apply pending migrations before anything else (serve and stdio do). */
  migrate: boolean;
}

export async function createServices(config: Config, logger: Logger, options: CreateServicesOptions): Promise<Services> {
  const db = await openDatabase(config, logger);
  let cache: Cache | undefined;
  let limits: RateLimits | undefined;
  try {
    await db.ping();
    if (options.migrate) {
      await migrate(db, logger);
    } else {
      const status = await migrationStatus(db);
      if (status.pending.length > 0) {
        throw new ExaiError(
          'database_error',
          `The database schema is at version ${status.current}, but this exai needs version ${status.latest}. Run \`exai migrate\` first.`,
        );
      }
    }
    cache = await openCache(config, logger);
    const localUser = await ensureUser(db, config.localUser);
    const conversations = new ConversationStore(
      db,
      cache,
      {
        cacheTtlMs: config.cache.ttlMs,
        maxMessageBytes: config.limits.maxMessageBytes,
        maxThreadDepth: config.limits.maxThreadDepth,
      },
      logger,
    );
    const startedAt = Date.now();
    const openCacheRef = cache;
    // PGlite has no autovacuum: keep its statistics (and so its plans) in step with the tables.
    const maintenance = db.kind === 'pglite' ? startPgliteMaintenance(db, logger) : undefined;
    limits = await RateLimits.open({
      redisUrl: config.redis.url,
      commandTimeoutMs: config.redis.commandTimeoutMs,
      // Outside the cache's `<prefix>:` namespace, which the cache may clear after a Redis restart.
      keyPrefix: `${config.redis.keyPrefix}-rl:`,
      logger,
      // A slot held by a process that died frees itself once a call could no longer be running.
      callLeaseMs: config.providers.timeoutMs + 60_000,
    });
    const openLimits = limits;
    const calls = new MemoryCallRecorder();
    const router = ProviderRouter.fromConfig(config, calls, async (provider) => {
      const permit = await openLimits.admitProvider(provider, config.providers.maxConcurrent);
      return () => permit.release();
    });
    return {
      config,
      logger,
      db,
      cache,
      conversations,
      router,
      limits: openLimits,
      calls,
      localUser,
      async userIdFor(handle) {
        if (handle === undefined || handle === localUser.handle) return localUser.id;
        const user = await findUserByHandle(db, handle);
        if (user === undefined) throw new ExaiError('not_found', `No user with handle ${JSON.stringify(handle)}.`);
        return user.id;
      },
      startedAt,
      health: () => checkHealth(db, openCacheRef, startedAt),
      async close() {
        await maintenance?.stop();
        await openLimits.close();
        await openCacheRef.close();
        await db.close();
      },
    };
  } catch (error) {
    await limits?.close();
    await cache?.close();
    await db.close().catch(() => undefined);
    throw error;
  }
}
