/**
 * Versioned SQL migrations from `sql/NNNN_name.sql`, applied in order, each in
 * its own transaction under a transaction-level advisory lock (so two instances
 * starting together queue rather than race, and transaction-mode poolers work),
 * and recorded in `exai.schema_version`.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ExaiError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Database, Queryable } from './types.js';
import { sqlState } from './errors.js';

export interface Migration {
  version: number;
  name: string;
  description: string;
  sql: string;
  checksum: string;
}

export interface AppliedMigration {
  version: number;
  description: string;
  appliedAt: Date;
}

export interface MigrationStatus {
  current: number;
  latest: number;
  applied: AppliedMigration[];
  pending: { version: number; name: string; description: string }[];
}

/** Arbitrary constant: the advisory lock every exai instance takes while migrating. */
const migrationLockKey = 7_304_518_221;

const bootstrapSql = `
  CREATE SCHEMA IF NOT EXISTS exai;
  CREATE TABLE IF NOT EXISTS exai.schema_version (
    version integer PRIMARY KEY,
    description text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  );
  ALTER TABLE exai.schema_version ENABLE ROW LEVEL SECURITY;
  ALTER TABLE exai.schema_version FORCE ROW LEVEL SECURITY;
  DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'exai' AND tablename = 'schema_version') THEN
      -- Not user data: readable by whoever holds a grant (only the migrating role does).
      CREATE POLICY schema_version_maintainer ON exai.schema_version FOR ALL USING (true) WITH CHECK (true);
    END IF;
  END $$;
`;

function migrationsFolder(): string {
  // Beside this file when run from source; from dist/src/db, back in the source tree.
  for (const candidate of ['./sql/', '../../../src/db/sql/']) {
    const folder = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(folder)) return folder;
  }
  throw new ExaiError('internal', 'The SQL migrations folder (src/db/sql) is missing from this installation.');
}

export function loadMigrations(folder = migrationsFolder()): Migration[] {
  const migrations = readdirSync(folder)
    .filter((file) => file.endsWith('.sql'))
    .sort()
    .map((file) => {
      const match = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
      if (!match) throw new ExaiError('internal', `Migration file ${file} is not named NNNN_name.sql.`);
      const sql = readFileSync(`${folder}/${file}`, 'utf8');
      const described = /^--\s*description:\s*(.+)$/m.exec(sql);
      return {
        version: Number(match[1]),
        name: file.replace(/\.sql$/, ''),
        description: (described?.[1] ?? match[2]!.replaceAll('_', ' ')).trim(),
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      };
    });
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new ExaiError('internal', `Migrations must be numbered 0001, 0002, … without gaps; found ${migration.name}.`);
    }
  });
  return migrations;
}

async function appliedVersions(tx: Queryable): Promise<(AppliedMigration & { checksum: string })[]> {
  const result = await tx.query<{ version: number; description: string; applied_at: Date; checksum: string }>(
    'SELECT version, description, applied_at, checksum FROM exai.schema_version ORDER BY version',
  );
  return result.rows.map((row) => ({
    version: row.version,
    description: row.description,
    appliedAt: row.applied_at,
    checksum: row.checksum,
  }));
}

/**
 * Refuses a schema newer than this exai knows (a newer version migrated it),
 * and warns about applied migrations whose file has changed since.
 */
function checkApplied(applied: (AppliedMigration & { checksum: string })[], migrations: Migration[], logger?: Logger): void {
  const latest = migrations.at(-1)?.version ?? 0;
  const newest = applied.at(-1)?.version ?? 0;
  if (newest > latest) {
    throw new ExaiError(
      'database_error',
      `The database schema is at version ${newest}, newer than this exai knows (${latest}): a newer exai migrated it. Upgrade exai.`,
    );
  }
  for (const row of applied) {
    const known = migrations.find((migration) => migration.version === row.version);
    if (known !== undefined && known.checksum !== row.checksum) {
      logger?.warn({ version: row.version, migration: known.name }, 'an applied migration has changed since it ran; the database keeps the old one');
    }
  }
}

function explainFailure(migration: Migration, error: unknown): ExaiError {
  if (error instanceof ExaiError && error.code === 'database_unavailable') return error;
  const message = error instanceof Error ? error.message : String(error);
  const denied = sqlState(error) === '42501';
  const advice = (error as { cause?: { hint?: string } }).cause?.hint;
  const hint = /extension "vector"|vector\.control/.test(message) && !denied
    ? ' pgvector is not installed on this PostgreSQL server: install it (scripts/install-pgvector.sh builds it on Debian) or use a provider that ships it, such as Supabase.'
    : /extension "vector"/.test(message) || /CREATE EXTENSION/i.test(message)
      ? ' Creating the pgvector extension needs a superuser here: ask an administrator to run CREATE EXTENSION vector; in this database.'
      : denied && advice !== undefined
        ? ` ${advice}`
        : denied
          ? ' The connecting role lacks a privilege the migration needs; run it once as the database owner or an administrator.'
          : '';
  return new ExaiError('database_error', `Migration ${migration.name} failed and was rolled back: ${message}.${hint}`, {
    cause: error,
  });
}

/** Applies every pending migration; safe to call from several instances at once. */
export async function migrate(
  db: Database,
  logger?: Logger,
  options: { folder?: string } = {},
): Promise<{ applied: Migration[]; current: number }> {
  const migrations = loadMigrations(options.folder);
  const applied: Migration[] = [];
  for (;;) {
    let attempted: Migration | undefined;
    try {
      const done = await db.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [migrationLockKey]);
        await tx.exec(bootstrapSql);
        const rows = await appliedVersions(tx);
        checkApplied(rows, migrations, logger);
        const versions = new Set(rows.map((row) => row.version));
        const next = migrations.find((migration) => !versions.has(migration.version));
        if (next === undefined) return true;
        attempted = next;
        await tx.exec(next.sql);
        await tx.query('INSERT INTO exai.schema_version (version, description, checksum) VALUES ($1, $2, $3)', [
          next.version,
          next.description,
          next.checksum,
        ]);
        return false;
      });
      if (done) break;
    } catch (error) {
      throw attempted === undefined ? error : explainFailure(attempted, error);
    }
    if (attempted !== undefined) {
      applied.push(attempted);
      logger?.info({ version: attempted.version, migration: attempted.name }, 'applied migration');
    }
  }
  return { applied, current: migrations.length === 0 ? 0 : migrations[migrations.length - 1]!.version };
}

/** What is applied and what is pending, without changing anything. */
export async function migrationStatus(db: Database): Promise<MigrationStatus> {
  const migrations = loadMigrations();
  const exists = await db.query<{ present: boolean }>("SELECT to_regclass('exai.schema_version') IS NOT NULL AS present");
  const rows = exists.rows[0]?.present ? await appliedVersions(db) : [];
  checkApplied(rows, migrations);
  const applied = rows.map(({ version, description, appliedAt }) => ({ version, description, appliedAt }));
  const versions = new Set(applied.map((row) => row.version));
  return {
    current: applied.reduce((max, row) => Math.max(max, row.version), 0),
    latest: migrations.reduce((max, migration) => Math.max(max, migration.version), 0),
    applied,
    pending: migrations
      .filter((migration) => !versions.has(migration.version))
      .map(({ version, name, description }) => ({ version, name, description })),
  };
}
