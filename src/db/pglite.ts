/**
 * Embedded PostgreSQL (PGlite, in WebAssembly) with pgvector, stored under
 * EXAI_HOME. PGlite runs one query at a time, so it belongs to exactly one
 * process: callers must hold the embedded owner lock before opening it.
 */
import { mkdir } from 'node:fs/promises';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import type { Database, Queryable, QueryResult, Row } from './types.js';
import { toDatabaseError } from './errors.js';

interface PgliteLike {
  query<R>(text: string, params?: unknown[]): Promise<{ rows: R[]; affectedRows?: number }>;
  exec(script: string): Promise<{ rows: Row[]; affectedRows?: number }[]>;
}

function wrap(target: PgliteLike, where: string): Queryable {
  return {
    async query<R = Row>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      try {
        const result = await target.query<R>(text, params === undefined ? undefined : [...params]);
        return { rows: result.rows, affectedRows: result.affectedRows ?? 0 };
      } catch (error) {
        throw toDatabaseError(error, where);
      }
    },
    async exec(script: string): Promise<QueryResult<Row>[]> {
      try {
        const results = await target.exec(script);
        return results.map((result) => ({ rows: result.rows, affectedRows: result.affectedRows ?? 0 }));
      } catch (error) {
        throw toDatabaseError(error, where);
      }
    },
  };
}

export interface PgliteOptions {
  /** A tarball from `dumpDataDir` to start from (tests use a migrated snapshot). */
  loadDataDir?: Blob;
}

export interface PgliteDatabase extends Database {
  /** The whole data directory as a tarball, for `loadDataDir`. */
  dumpDataDir(): Promise<Blob>;
}

export async function openPglite(dataDir: string | undefined, options: PgliteOptions = {}): Promise<PgliteDatabase> {
  if (dataDir !== undefined) await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const where = dataDir === undefined ? 'embedded database (in memory)' : `embedded database ${dataDir}`;
  let db: PGlite;
  try {
    db = await PGlite.create(dataDir ?? 'memory://', {
      extensions: { vector },
      ...(options.loadDataDir === undefined ? {} : { loadDataDir: options.loadDataDir }),
    });
  } catch (error) {
    throw toDatabaseError(error, where);
  }
  const direct = wrap(db, where);
  return {
    kind: 'pglite',
    query: direct.query,
    exec: direct.exec,
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      return db.transaction((tx: Transaction) => fn(wrap(tx, where)));
    },
    async maintenance(statement: string): Promise<void> {
      await direct.query(statement);
    },
    async ping(): Promise<void> {
      await direct.query('select 1');
    },
    dumpDataDir: () => db.dumpDataDir('none'),
    async close(): Promise<void> {
      if (!db.closed) await db.close();
    },
  };
}
