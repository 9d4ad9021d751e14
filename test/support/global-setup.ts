/**
 * Once per test run: build the CLI the process tests spawn, make a migrated
 * PGlite snapshot every suite starts from (creating PGlite takes seconds,
 * loading a snapshot well under one), and check that PostgreSQL and Redis
 * answer when they are configured — failing the run in CI when they do not.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import type { TestProject } from 'vitest/node';
import { openPglite } from '../../src/db/pglite.js';
import { migrate } from '../../src/db/migrate.js';
import { externalBackends } from './env.js';
import './provided-context.js';

async function checkExternal(): Promise<void> {
  const external = externalBackends();
  if (external === undefined) {
    process.stderr.write('TEST_DATABASE_URL/TEST_REDIS_URL not set: storage suites run on embedded PGlite only.\n');
    return;
  }
  const client = new pg.Client({ connectionString: external.databaseUrl, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    const vector = await client.query("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'");
    if (vector.rowCount === 0) throw new Error('pgvector is not installed on the test PostgreSQL (run scripts/install-pgvector.sh)');
  } catch (error) {
    throw new Error(`TEST_DATABASE_URL is set but PostgreSQL is not usable: ${(error as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
  const redis = new Redis(external.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 3000 });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new Error(`TEST_REDIS_URL is set but Redis does not answer: ${(error as Error).message}`);
  } finally {
    redis.disconnect();
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  const root = path.resolve(import.meta.dirname, '..', '..');
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build-if-needed.mjs')], { stdio: 'inherit' });
  await checkExternal();
  const folder = mkdtempSync(path.join(os.tmpdir(), 'exai-test-snapshot-'));
  const db = await openPglite(undefined);
  await migrate(db);
  const snapshot = path.join(folder, 'migrated.tar');
  writeFileSync(snapshot, Buffer.from(await (await db.dumpDataDir()).arrayBuffer()));
  await db.close();
  project.provide('pgliteSnapshot', snapshot);
  return () => rmSync(folder, { recursive: true, force: true });
}
