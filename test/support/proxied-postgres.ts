/**
 * A fresh PostgreSQL test database reached through a TCP proxy the test can
 * cut and restore: an outage of the database for one suite only.
 */
import { openPostgres } from '../../src/db/postgres.js';
import type { Database } from '../../src/db/types.js';
import { createPostgresDatabase, silentLogger, type TestDatabase } from './backends.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

export interface ProxiedPostgres {
  /** The database itself, reached directly (for checks and set-up). */
  database: TestDatabase;
  proxy: TcpProxy;
  /** A pool that connects through the proxy. */
  proxied: Database;
  close(): Promise<void>;
}

export async function startProxiedPostgres(pool: { poolMax: number; connectTimeoutMs: number; queryTimeoutMs: number }): Promise<ProxiedPostgres> {
  const database = await createPostgresDatabase();
  const target = new URL(database.location);
  const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
  const through = new URL(database.location);
  through.hostname = '127.0.0.1';
  through.port = String(proxy.port);
  const proxied = await openPostgres({ url: through.toString(), ...pool, logger: silentLogger });
  return {
    database,
    proxy,
    proxied,
    async close() {
      await proxied.close();
      await proxy.close();
      await database.destroy();
    },
  };
}
