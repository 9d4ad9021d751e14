import path from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { openPglite } from './pglite.js';
import { openPostgres } from './postgres.js';
import type { Database } from './types.js';

/** Folder of the embedded database inside EXAI_HOME. */
export function embeddedDataDir(home: string): string {
  return path.join(home, 'pgdata');
}

/**
 * Opens the configured database: PostgreSQL when DATABASE_URL is set, else the
 * embedded PGlite under EXAI_HOME. The embedded one must only be opened by the
 * holder of the owner lock (see embedded/owner-lock.ts).
 */
export function openDatabase(config: Config, logger: Logger): Promise<Database> {
  if (config.database.url !== undefined) {
    return openPostgres({
      url: config.database.url,
      poolMax: config.database.poolMax,
      connectTimeoutMs: config.database.connectTimeoutMs,
      queryTimeoutMs: config.database.queryTimeoutMs,
      logger,
    });
  }
  return openPglite(embeddedDataDir(config.home));
}
