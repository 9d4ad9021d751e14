/**
 * Declares exai's queues (and pg-boss's cron hand-off queue) with their retry
 * settings. pg-boss's createQueue inserts a row and then adds a partition and
 * foreign keys; two instances doing that at once on PostgreSQL deadlock. Here
 * every declaration runs in one transaction under pg-boss's schema lock, so
 * instances starting together queue up, and a queue that already exists gets
 * the settings of the code now running instead of those of whoever came first.
 */
import type { Database } from '../db/types.js';
import type { ResolvedDefinition } from './definitions.js';
import { cronQueue, jobsSchema, schemaLockSql } from './schema.js';

/** pg-boss's queue options, as its `create_queue(name, options json)` reads them. */
interface QueueOptions {
  policy: 'standard' | 'stately';
  retryLimit?: number;
  retryDelay?: number;
  retryBackoff?: boolean;
  expireInSeconds?: number;
}

function optionsOf(definition: ResolvedDefinition): Required<QueueOptions> {
  return {
    // stately: at most one job waiting and one running (per singleton key).
    policy: definition.singleton ? 'stately' : 'standard',
    retryLimit: definition.retryLimit,
    retryDelay: definition.retryDelaySeconds,
    // Backoff with a delay of 0 would become 1 s in pg-boss; 0 means "retry at once".
    retryBackoff: definition.retryDelaySeconds > 0,
    expireInSeconds: definition.expireInSeconds,
  };
}

export async function declareQueues(db: Database, definitions: readonly ResolvedDefinition[]): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query(schemaLockSql);
    // What pg-boss's own cron start-up would create; made here so that its attempt finds it and does nothing.
    await tx.query(`SELECT ${jobsSchema}.create_queue($1, $2::json)`, [cronQueue, JSON.stringify({ policy: 'standard' })]);
    for (const definition of definitions) {
      const options = optionsOf(definition);
      await tx.query(`SELECT ${jobsSchema}.create_queue($1, $2::json)`, [definition.name, JSON.stringify(options)]);
      await tx.query(
        `UPDATE ${jobsSchema}.queue
            SET policy = $2, retry_limit = $3, retry_delay = $4, retry_backoff = $5, expire_seconds = $6, updated_on = now()
          WHERE name = $1
            AND (policy, retry_limit, retry_delay, retry_backoff, expire_seconds) IS DISTINCT FROM ($2::text, $3::int, $4::int, $5::bool, $6::int)`,
        [definition.name, options.policy, options.retryLimit, options.retryDelay, options.retryBackoff, options.expireInSeconds],
      );
    }
  });
}
