/**
 * Real storage for the suites: a fresh migrated database per suite, on embedded
 * PGlite (from the global snapshot) and, when configured, on PostgreSQL (a new
 * database per suite, dropped afterwards); the in-process cache or Redis (a key
 * prefix per suite, so suites running in parallel never see each other's keys).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { MemoryCache } from '../../src/cache/memory.js';
import { RedisCache } from '../../src/cache/redis.js';
import type { Cache } from '../../src/cache/types.js';
import { migrate } from '../../src/db/migrate.js';
import { openPglite } from '../../src/db/pglite.js';
import { openPostgres } from '../../src/db/postgres.js';
import type { Database } from '../../src/db/types.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { externalBackends } from './env.js';
import './provided-context.js';

export interface TestDatabase {
  db: Database;
  /** Connection string (PostgreSQL) or data directory (PGlite) of this database. */
  location: string;
  /** Closes and opens the same database again, as a restarted server would. */
  reopen(): Promise<Database>;
  /** Closes it and removes every trace. */
  destroy(): Promise<void>;
}

export interface StorageBackend {
  name: 'pglite+memory' | 'postgres+redis';
  kind: 'pglite' | 'postgres';
  createDatabase(): Promise<TestDatabase>;
  createCache(logger?: Logger): Promise<Cache>;
  /** REDIS_URL / DATABASE_URL values a spawned server would need; empty for embedded. */
  env(database: TestDatabase): Record<string, string>;
}

export const silentLogger = createLogger('silent');

let snapshot: Blob | undefined;
/** The migrated PGlite data directory the global setup made. */
export function pgliteSnapshotBlob(): Blob {
  snapshot ??= new Blob([readFileSync(inject('pgliteSnapshot'))]);
  return snapshot;
}

export async function createPgliteDatabase(): Promise<TestDatabase> {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'exai-test-pglite-'));
  let db: Database = await openPglite(folder, { loadDataDir: pgliteSnapshotBlob() });
  return {
    get db() {
      return db;
    },
    location: folder,
    async reopen() {
      await db.close();
      db = await openPglite(folder);
      return db;
    },
    async destroy() {
      await db.close();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

/** A new, empty PostgreSQL database on the test server; migrated unless asked not to. */
export async function createPostgresDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const external = externalBackends();
  if (external === undefined) throw new Error('TEST_DATABASE_URL is not set');
  const name = `exai_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: external.databaseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(external.databaseUrl);
  url.pathname = `/${name}`;
  const location = url.toString();
  const open = () => openPostgres({ url: location, poolMax: 10, connectTimeoutMs: 5000, logger: silentLogger });
  let db = await open();
  if (options.migrated !== false) await migrate(db);
  return {
    get db() {
      return db;
    },
    location,
    async reopen() {
      await db.close();
      db = await open();
      return db;
    },
    async destroy() {
      await db.close().catch(() => undefined);
      const cleanup = new pg.Client({ connectionString: external.databaseUrl });
      await cleanup.connect();
      try {
        await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await cleanup.end();
      }
    },
  };
}

export function uniqueRedisPrefix(): string {
  return `exai-test-${randomBytes(6).toString('hex')}:`;
}

export function storageBackends(): StorageBackend[] {
  const backends: StorageBackend[] = [
    {
      name: 'pglite+memory',
      kind: 'pglite',
      createDatabase: createPgliteDatabase,
      createCache: async () => new MemoryCache({ maxEntries: 10_000, maxBytes: 64 * 1024 * 1024 }),
      env: () => ({}),
    },
  ];
  const external = externalBackends();
  if (external !== undefined) {
    backends.push({
      name: 'postgres+redis',
      kind: 'postgres',
      createDatabase: () => createPostgresDatabase(),
      createCache: async (logger = silentLogger) => {
        const cache = new RedisCache({ url: external.redisUrl, commandTimeoutMs: 1000, logger, keyPrefix: uniqueRedisPrefix() });
        await cache.connect();
        await waitFor(() => cache.health().status === 'ok', 5000, 'Redis to become ready');
        return cache;
      },
      // A Redis namespace per database: servers of one test share rate limits and lock-outs, other suites' do not.
      env: (database) => ({ DATABASE_URL: database.location, REDIS_URL: external.redisUrl, EXAI_REDIS_PREFIX: new URL(database.location).pathname.slice(1) }),
    });
  }
  return backends;
}

/** Polls until `check` holds; fails with what it waited for. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
