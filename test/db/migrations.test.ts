import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadMigrations, migrate, migrationStatus } from '../../src/db/migrate.js';
import { openPostgres } from '../../src/db/postgres.js';
import type { Database } from '../../src/db/types.js';
import pg from 'pg';
import { ExaiError } from '../../src/errors.js';
import { asUser } from '../../src/db/session.js';
import { ensureUser } from '../../src/users/users.js';
import { createPostgresDatabase, silentLogger, storageBackends, type TestDatabase } from '../support/backends.js';
import { externalBackends } from '../support/env.js';

const latest = loadMigrations().at(-1)!.version;

describe.each(storageBackends())('migrations on $name', (backend) => {
  const databases: TestDatabase[] = [];
  afterAll(async () => {
    for (const database of databases) await database.destroy();
  });

  it('records every applied migration in exai.schema_version and is a no-op when current', async () => {
    const database = await backend.createDatabase();
    databases.push(database);
    const status = await migrationStatus(database.db);
    expect(status.current).toBe(latest);
    expect(status.pending).toEqual([]);
    const columns = await database.db.query<{ column_name: string }>(
      "SELECT column_name FROM information_schema.columns WHERE table_schema = 'exai' AND table_name = 'schema_version' ORDER BY column_name",
    );
    expect(columns.rows.map((row) => row.column_name)).toEqual(expect.arrayContaining(['version', 'applied_at', 'description']));
    const again = await migrate(database.db);
    expect(again.applied).toEqual([]);
  });

  it('creates the Supabase-compatible roles and auth.uid() reading sub from request.jwt.claims', async () => {
    const database = await backend.createDatabase();
    databases.push(database);
    const roles = await database.db.query<{ rolname: string }>(
      "SELECT rolname FROM pg_roles WHERE rolname IN ('anon', 'authenticated', 'service_role') ORDER BY rolname",
    );
    expect(roles.rows.map((row) => row.rolname)).toEqual(['anon', 'authenticated', 'service_role']);
    const uid = await database.db.transaction(async (tx) => {
      await tx.query("SELECT set_config('request.jwt.claims', $1, true)", [JSON.stringify({ sub: '5b0f3a9e-7c1d-4e2f-8a3b-9c4d5e6f7a8b' })]);
      return tx.query<{ uid: string; role: string | null }>('SELECT auth.uid() AS uid, auth.role() AS role');
    });
    expect(uid.rows[0]).toEqual({ uid: '5b0f3a9e-7c1d-4e2f-8a3b-9c4d5e6f7a8b', role: null });
    const none = await database.db.query<{ uid: string | null }>('SELECT auth.uid() AS uid');
    expect(none.rows[0]!.uid).toBeNull();
  });
});

describe.runIf(externalBackends() !== undefined)('migrations on a fresh PostgreSQL database', () => {
  const databases: TestDatabase[] = [];
  const pools: Database[] = [];
  afterAll(async () => {
    for (const pool of pools) await pool.close();
    for (const database of databases) await database.destroy();
  });

  async function extraConnection(database: TestDatabase): Promise<Database> {
    const db = await openPostgres({ url: database.location, poolMax: 2, connectTimeoutMs: 5000, logger: silentLogger });
    pools.push(db);
    return db;
  }

  it('lets several instances migrate at once: each version is applied exactly once', async () => {
    const database = await createPostgresDatabase({ migrated: false });
    databases.push(database);
    const instances = [database.db, await extraConnection(database), await extraConnection(database), await extraConnection(database)];
    const results = await Promise.all(instances.map((db) => migrate(db)));
    const appliedCounts = results.map((result) => result.applied.length);
    expect(appliedCounts.reduce((sum, count) => sum + count, 0)).toBe(latest);
    const rows = await database.db.query<{ version: number; n: number }>(
      'SELECT version, count(*)::int AS n FROM exai.schema_version GROUP BY version ORDER BY version',
    );
    expect(rows.rows).toEqual(Array.from({ length: latest }, (_, index) => ({ version: index + 1, n: 1 })));
  });

  it('refuses a schema that a newer exai migrated', async () => {
    const database = await createPostgresDatabase();
    databases.push(database);
    await database.db.query("INSERT INTO exai.schema_version (version, description, checksum) VALUES (999, 'from the future', 'x')");
    const error = await migrate(database.db).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect((error as ExaiError).message).toContain('schema is at version 999, newer than this exai knows');
    await expect(migrationStatus(database.db)).rejects.toThrow(/Upgrade exai/);
  });

  it('keeps an auth.uid() that already exists, as on Supabase', async () => {
    const database = await createPostgresDatabase({ migrated: false });
    databases.push(database);
    await database.db.exec(`
      CREATE SCHEMA auth;
      CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$ SELECT '11111111-1111-4111-8111-111111111111'::uuid $$;
    `);
    await migrate(database.db);
    const uid = await database.db.query<{ uid: string }>('SELECT auth.uid() AS uid');
    expect(uid.rows[0]!.uid).toBe('11111111-1111-4111-8111-111111111111');
  });

  it('rolls a failing migration back whole and says which one failed', async () => {
    const database = await createPostgresDatabase({ migrated: false });
    databases.push(database);
    const folder = mkdtempSync(path.join(os.tmpdir(), 'exai-migrations-'));
    try {
      const first = loadMigrations()[0]!;
      writeFileSync(path.join(folder, `${first.name}.sql`), readFileSync(new URL(`../../src/db/sql/${first.name}.sql`, import.meta.url)));
      writeFileSync(
        path.join(folder, '0002_broken.sql'),
        '-- description: half a migration\nCREATE TABLE exai.half_done (id int);\nSELECT no_such_function();\n',
      );
      const error = await migrate(database.db, undefined, { folder }).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(ExaiError);
      expect((error as ExaiError).message).toMatch(/Migration 0002_broken failed and was rolled back/);
      const table = await database.db.query<{ present: boolean }>("SELECT to_regclass('exai.half_done') IS NOT NULL AS present");
      expect(table.rows[0]!.present).toBe(false);
      const versions = await database.db.query<{ version: number }>('SELECT version FROM exai.schema_version ORDER BY version');
      expect(versions.rows.map((row) => row.version)).toEqual([1]);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('migrates as a database owner that is not a superuser, once an administrator created pgvector', async () => {
    const external = externalBackends()!;
    const admin = new pg.Client({ connectionString: external.databaseUrl });
    await admin.connect();
    const role = `exai_owner_${Math.random().toString(16).slice(2, 10)}`;
    const name = `exai_test_${role}`;
    try {
      await admin.query(`CREATE ROLE ${role} LOGIN CREATEROLE`);
      await admin.query(`CREATE DATABASE ${name} OWNER ${role}`);
      const url = new URL(external.databaseUrl);
      url.pathname = `/${name}`;
      const asAdmin = new pg.Client({ connectionString: url.toString() });
      await asAdmin.connect();
      await asAdmin.query('CREATE EXTENSION IF NOT EXISTS vector');
      await asAdmin.end();
      url.username = role;
      const owner = await openPostgres({ url: url.toString(), poolMax: 2, connectTimeoutMs: 5000, logger: silentLogger });
      pools.push(owner);
      await migrate(owner);
      const user = await ensureUser(owner, 'limited');
      const thread = await asUser(owner, user.id, (tx) => tx.query<{ id: string }>('INSERT INTO exai.conversations DEFAULT VALUES RETURNING id'));
      expect(thread.rows).toHaveLength(1);
      const other = await ensureUser(owner, 'other');
      const seen = await asUser(owner, other.id, (tx) => tx.query<{ n: number }>('SELECT count(*)::int AS n FROM exai.conversations'));
      expect(seen.rows[0]!.n).toBe(0);
      await owner.close();
      pools.splice(pools.indexOf(owner), 1);
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    }
  });
});
