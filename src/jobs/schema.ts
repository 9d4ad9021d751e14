/** Where pg-boss keeps exai's jobs, and the lock that serializes changes to its schema. */

/** pg-boss's tables live here rather than in its default `pgboss`, beside exai's own schema. */
export const jobsSchema = 'exai_jobs';

/** exai's queue names; pg-boss's own (below) cannot match. */
export const queueNamePattern = /^[a-z0-9][a-z0-9_.-]{0,99}$/;

/** pg-boss's own queues (cron hand-off) start with this; they are plumbing, hidden from listings. */
export const internalQueuePrefix = '__pgboss__';

/** The queue pg-boss's cron passes scheduled jobs through. */
export const cronQueue = `${internalQueuePrefix}send-it`;

/**
 * The transaction-level advisory lock pg-boss takes around its schema changes and
 * maintenance (same key, so exai's queue declarations queue up behind them too).
 */
export const schemaLockSql = `SELECT pg_advisory_xact_lock(('x' || encode(sha224((current_database() || '.pgboss.${jobsSchema}')::bytea), 'hex'))::bit(64)::bigint)`;
