/**
 * pg-boss's `db` option over exai's Database, so pg-boss shares exai's pool (or
 * its one PGlite instance) on both backends: statements with values go through
 * `query`, scripts through `exec` (pg-boss reads the last statement's rows).
 */
import { createRequire } from 'node:module';
import { redactSecrets } from '../audit/redact.js';
import type { Database } from '../db/types.js';
import type { Logger } from '../logger.js';
import { jobsSchema } from './schema.js';

interface BossDb {
  executeSql(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

interface BossPlans {
  completeJobs(schema: string): string;
  failJobsById(schema: string): string;
}

// pg-boss (pinned exactly) calls complete() and fail() after a handler without awaiting them: if
// either rejected, Node would end the process on the unhandled rejection. These are their texts.
const plans = createRequire(import.meta.url)('pg-boss/src/plans.js') as BossPlans;
const unawaitedStatements = new Set([plans.completeJobs(jobsSchema), plans.failJobsById(jobsSchema)]);

/** pg-boss wraps schema changes and maintenance in `BEGIN; … COMMIT;` scripts. */
const opensTransaction = /^\s*BEGIN\s*;/i;

export interface BossDatabase extends BossDb {
  /** Statements issued and not yet settled (a stopping runner waits for them). */
  pendingCount(): number;
}

export function bossDatabase(db: Database, logger: Logger): BossDatabase {
  const pending = new Set<Promise<unknown>>();

  async function run(text: string, values: unknown[] | undefined): Promise<{ rows: unknown[] }> {
    if (values !== undefined && values.length > 0) return db.query(text, values);
    // PGlite has one session: a script failing between its BEGIN and COMMIT would leave that session
    // in an aborted transaction, and every later query of exai's would fail. Inside a transaction of
    // our own (the script's BEGIN is then a no-op with a warning, and so is our COMMIT after its own)
    // a failure is rolled back, and no other query runs meanwhile. On PostgreSQL the pool drops a
    // connection whose query failed, so the script runs as is, in one round trip.
    const results = db.kind === 'pglite' && opensTransaction.test(text) ? await db.transaction((tx) => tx.exec(text)) : await db.exec(text);
    return { rows: results.at(-1)?.rows ?? [] };
  }

  return {
    executeSql(text, values) {
      let promise = run(text, values);
      if (unawaitedStatements.has(text)) {
        promise = promise.catch((error: unknown) => {
          // The job stays active until it expires, then is retried: at-least-once, never lost.
          logger.warn({ err: { message: redactSecrets(String((error as Error)?.message ?? error)) } }, 'could not record a job as finished; it will be retried once it expires');
          return { rows: [{ count: '0' }] };
        });
      }
      pending.add(promise);
      const forget = () => pending.delete(promise);
      promise.then(forget, forget);
      return promise;
    },
    pendingCount: () => pending.size,
  };
}
