/**
 * What autovacuum does on PostgreSQL, for the embedded database, which has
 * none: when a table has grown by a fifth since its statistics were taken,
 * VACUUM (ANALYZE) it. Without this the planner keeps believing a table is as
 * small as when it was first planned, and the plans cached per connection
 * (PL/pgSQL functions such as append_turns) keep full scans that grow slower
 * with every row: an append went from 1 ms to 11 ms at 2,000 threads.
 *
 * PGlite keeps no activity counters, so growth is judged by the table's size
 * on disk against the page count the last VACUUM or ANALYZE recorded.
 */
import type { Database } from './types.js';
import type { Logger } from '../logger.js';

const checkIntervalMs = 30_000;
/** Pages a table may grow past its recorded size before it is analysed again (with a small floor). */
const growthFactor = 1.2;
const growthFloorPages = 8;

const grownTables = `
  SELECT format('%I.%I', n.nspname, c.relname) AS name, c.relpages AS recorded,
         (pg_relation_size(c.oid) / current_setting('block_size')::integer)::integer AS pages
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'exai' AND c.relkind = 'r'`;

export interface Maintenance {
  /** Checks every table now (also runs on a timer). */
  runOnce(): Promise<string[]>;
  stop(): Promise<void>;
}

export function startPgliteMaintenance(db: Database, logger: Logger, intervalMs = checkIntervalMs): Maintenance {
  let running: Promise<string[]> | undefined;
  const runOnce = (): Promise<string[]> => {
    running ??= (async () => {
      const maintained: string[] = [];
      try {
        const tables = await db.query<{ name: string; recorded: number; pages: number }>(grownTables);
        for (const table of tables.rows) {
          if (table.pages <= Math.max(table.recorded, 0) * growthFactor + growthFloorPages) continue;
          const started = performance.now();
          await db.query(`VACUUM (ANALYZE) ${table.name}`);
          maintained.push(table.name);
          logger.debug({ table: table.name, pages: table.pages, ms: Math.round(performance.now() - started) }, 'vacuumed and analysed a grown table');
        }
      } catch (error) {
        // Maintenance must never disturb the server; the next round tries again.
        logger.warn({ err: error }, 'embedded database maintenance failed');
      } finally {
        running = undefined;
      }
      return maintained;
    })();
    return running;
  };
  const timer = setInterval(() => void runOnce(), intervalMs);
  timer.unref();
  return {
    runOnce,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
