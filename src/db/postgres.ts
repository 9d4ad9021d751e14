/**
 * PostgreSQL (or Supabase, directly or through a transaction-mode pooler) via
 * node-postgres. Only unnamed statements and transaction-local settings are
 * used, so pgbouncer/Supavisor in transaction mode work.
 */
import pg from 'pg';
import type { Logger } from '../logger.js';
import { redactUrl } from '../logger.js';
import type { Database, Queryable, QueryResult, Row } from './types.js';
import { isUnavailableError, toDatabaseError } from './errors.js';

export interface PostgresOptions {
  url: string;
  poolMax: number;
  connectTimeoutMs: number;
  /** Client-side: a query without an answer for this long fails and its connection is dropped. */
  queryTimeoutMs?: number;
  logger: Logger;
}

/** How long a maintenance statement may run before the client gives up on it: a day. */
const maintenanceTimeoutMs = 24 * 60 * 60_000;

/** `queryTimeoutMs` replaces the pool's client-side timeout (maintenance). */
function wrapClient(client: pg.PoolClient | pg.Pool, where: string, queryTimeoutMs?: number): Queryable {
  return {
    async query<R = Row>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      try {
        const values = params === undefined ? undefined : [...params];
        // node-postgres reads query_timeout from a query's config too; its types name it only for connections.
        const config: pg.QueryConfig & { query_timeout?: number } = queryTimeoutMs === undefined ? { text, values } : { text, values, query_timeout: queryTimeoutMs };
        const result = await client.query(config);
        return { rows: result.rows as R[], affectedRows: result.command === 'SELECT' ? 0 : (result.rowCount ?? 0) };
      } catch (error) {
        throw toDatabaseError(error, where);
      }
    },
    async exec(script: string): Promise<QueryResult<Row>[]> {
      try {
        const result = (await client.query(script)) as unknown as pg.QueryResult | pg.QueryResult[];
        const results = Array.isArray(result) ? result : [result];
        return results.map((r) => ({ rows: r.rows as Row[], affectedRows: r.command === 'SELECT' ? 0 : (r.rowCount ?? 0) }));
      } catch (error) {
        throw toDatabaseError(error, where);
      }
    },
  };
}

export async function openPostgres(options: PostgresOptions): Promise<Database> {
  const where = redactUrl(options.url) ?? 'DATABASE_URL';
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolMax,
    connectionTimeoutMillis: options.connectTimeoutMs,
    query_timeout: options.queryTimeoutMs ?? 30_000,
    // Notice a peer that vanished without closing the connection.
    keepAlive: true,
    idleTimeoutMillis: 30_000,
    application_name: 'exai',
  });
  // An idle client that loses its connection emits here; without a listener the process would crash.
  pool.on('error', (error) => {
    options.logger.warn({ err: { message: error.message, code: (error as { code?: string }).code } }, 'idle database connection lost');
  });
  const direct = wrapClient(pool, where);
  const patient = wrapClient(pool, where, maintenanceTimeoutMs);
  const database: Database = {
    kind: 'postgres',
    query: direct.query,
    exec: direct.exec,
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        throw toDatabaseError(error, where);
      }
      let broken: Error | undefined;
      // A connection that drops while checked out emits here; unheard, it would crash the process.
      const onError = (error: Error) => {
        broken = error;
      };
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const result = await fn(wrapClient(client, where));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        if (isUnavailableError(error)) broken = error as Error;
        try {
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          broken = rollbackError as Error;
        }
        throw toDatabaseError(error, where);
      } finally {
        client.off('error', onError);
        // A connection that failed mid-transaction is discarded, never reused.
        client.release(broken);
      }
    },
    async maintenance(statement: string): Promise<void> {
      await patient.query(statement);
    },
    async ping(): Promise<void> {
      await direct.query('select 1');
    },
    async close(): Promise<void> {
      await pool.end();
    },
  };
  return database;
}
