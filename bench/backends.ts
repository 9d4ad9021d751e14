/**
 * The backends the benchmarks run on, each fresh and migrated:
 * - pglite+memory: embedded PGlite in memory, with the in-process cache;
 * - postgres+redis: a new database `exai_bench_<random>` on the server at
 *   BENCH_DATABASE_URL (else TEST_DATABASE_URL), dropped at the end, and Redis at
 *   BENCH_REDIS_URL (else TEST_REDIS_URL) under a unique key prefix, removed at the end.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { MemoryCache } from '../src/cache/memory.js';
import { RedisCache } from '../src/cache/redis.js';
import type { Cache } from '../src/cache/types.js';
import { ConversationStore, type ConversationStoreOptions } from '../src/conversations/store.js';
import { migrate } from '../src/db/migrate.js';
import { startPgliteMaintenance } from '../src/db/pglite-maintenance.js';
import { openPglite } from '../src/db/pglite.js';
import { openPostgres } from '../src/db/postgres.js';
import type { Database } from '../src/db/types.js';
import type { Logger } from '../src/logger.js';
import { redactUrl } from '../src/logger.js';
import type { BenchBackend } from './harness.js';

/** The defaults of src/config.ts (EXAI_CACHE_TTL, EXAI_MAX_MESSAGE_BYTES, EXAI_THREAD_MAX_DEPTH, …). */
export const storeOptions: ConversationStoreOptions = {
  cacheTtlMs: 24 * 3600_000,
  maxMessageBytes: 1024 * 1024,
  maxThreadDepth: 20,
};
const memoryCacheOptions = { maxEntries: 10_000, maxBytes: 64 * 1024 * 1024 };
/** DATABASE_POOL_MAX's default. */
const poolMax = 10;
/** Above REDIS_COMMAND_TIMEOUT's 500ms default: a timeout would silently turn hits into misses mid-run. */
const redisCommandTimeoutMs = 2000;

export interface ExternalUrls {
  databaseUrl: string;
  redisUrl: string;
}

/** Where PostgreSQL and Redis are, or why the postgres+redis backend is skipped. */
export function externalUrls(env: NodeJS.ProcessEnv = process.env): ExternalUrls | { missing: string } {
  const databaseUrl = env.BENCH_DATABASE_URL || env.TEST_DATABASE_URL;
  const redisUrl = env.BENCH_REDIS_URL || env.TEST_REDIS_URL;
  if (databaseUrl && redisUrl) return { databaseUrl, redisUrl };
  const missing = [
    databaseUrl ? undefined : 'BENCH_DATABASE_URL (or TEST_DATABASE_URL)',
    redisUrl ? undefined : 'BENCH_REDIS_URL (or TEST_REDIS_URL)',
  ].filter((name) => name !== undefined);
  return { missing: missing.join(' and ') };
}

/** A new in-memory PGlite with the schema applied. */
export async function openMigratedPglite(): Promise<Database> {
  const db = await openPglite(undefined);
  try {
    await migrate(db);
  } catch (error) {
    await db.close();
    throw error;
  }
  return db;
}

export async function openPgliteBackend(logger: Logger): Promise<BenchBackend> {
  const db = await openMigratedPglite();
  const cache: Cache = new MemoryCache(memoryCacheOptions);
  // As `exai serve` does: PGlite has no autovacuum.
  const maintenance = startPgliteMaintenance(db, logger);
  const createStore = (database: Database) => new ConversationStore(database, cache, storeOptions, logger);
  return {
    name: 'pglite+memory',
    db,
    cache,
    store: createStore(db),
    createStore,
    async close() {
      await maintenance.stop();
      await cache.close();
      await db.close();
    },
  };
}

async function waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl, application_name: 'exai-bench' });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

async function deleteRedisPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/**
 * Creates the database and key prefix; `register` receives the cleanup as soon
 * as there is something to clean, so an interrupted run still drops them.
 */
export async function openPostgresBackend(
  urls: ExternalUrls,
  logger: Logger,
  register: (cleanup: () => Promise<void>) => void,
): Promise<BenchBackend> {
  const name = `exai_bench_${randomBytes(6).toString('hex')}`;
  const prefix = `exai-bench-${randomBytes(6).toString('hex')}:`;
  const url = new URL(urls.databaseUrl);
  url.pathname = `/${name}`;

  await adminQuery(urls.databaseUrl, `CREATE DATABASE ${name}`);
  let db: Database | undefined;
  let cache: Cache | undefined;
  let redis: Redis | undefined;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    // A fire-and-forget fill (loadThread) may still be in flight: a command on the same
    // connection completes after it, so the keys it writes exist before the prefix is removed.
    await cache?.get('bench:settle').catch(() => undefined);
    await cache?.close();
    if (redis !== undefined) {
      await deleteRedisPrefix(redis, prefix).catch((error: Error) =>
        process.stderr.write(`bench: could not remove Redis keys ${prefix}*: ${error.message}\n`),
      );
      redis.disconnect();
    }
    await db?.close().catch(() => undefined);
    await adminQuery(urls.databaseUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch((error: Error) =>
      process.stderr.write(`bench: could not drop database ${name}: ${error.message}\n`),
    );
  };
  register(close);
  try {
    db = await openPostgres({ url: url.toString(), poolMax, connectTimeoutMs: 5000, logger });
    await migrate(db);
    redis = new Redis(urls.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    const redisCache = new RedisCache({ url: urls.redisUrl, commandTimeoutMs: redisCommandTimeoutMs, logger, keyPrefix: prefix });
    cache = redisCache;
    await redisCache.connect();
    await waitUntil(() => redisCache.health().status === 'ok', 5000, `Redis at ${redactUrl(urls.redisUrl)} to become ready`);
  } catch (error) {
    await close();
    throw error;
  }
  const readyCache = cache;
  const rawRedis = redis;
  const createStore = (database: Database) => new ConversationStore(database, readyCache, storeOptions, logger);
  return {
    name: 'postgres+redis',
    db,
    cache: readyCache,
    store: createStore(db),
    createStore,
    redis: { get: (key) => rawRedis.get(key), set: (key, value) => rawRedis.set(key, value) },
    redisPrefix: prefix,
    close,
  };
}
