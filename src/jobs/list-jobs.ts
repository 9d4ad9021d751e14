/**
 * Reading and retrying jobs with plain SQL on pg-boss's tables, so the CLI needs
 * no running job runner. pg-boss moves finished jobs from `job` to `archive`;
 * both are read, so a failed job stays visible until its retention ends.
 */
import { recordAudit, type AuditActor } from '../audit/audit-log.js';
import { sqlState } from '../db/errors.js';
import { isUuid, switchToServiceSql } from '../db/session.js';
import type { Database, Queryable } from '../db/types.js';
import { ExaiError } from '../errors.js';
import { internalQueuePrefix, jobsSchema } from './schema.js';
import type { JobState, JobSummary } from './types.js';

export interface JobFilter {
  state?: JobState | undefined;
  queue?: string | undefined;
  /** Default 50. */
  limit?: number | undefined;
}

const messageChars = 500;

/** True once some runner has created pg-boss's schema. */
async function installed(db: Queryable): Promise<boolean> {
  const result = await db.query<{ present: boolean }>(`SELECT to_regclass('${jobsSchema}.archive') IS NOT NULL AS present`);
  return result.rows[0]?.present === true;
}

const iso = (value: unknown): string | null => (value === null || value === undefined ? null : new Date(value as string | Date).toISOString());

/**
 * A failed try's error message, or what a finished job returned, as bounded text. pg-boss stores an
 * error as `{name, message}`, and a bare value (its own "shut down while active", "failed by timeout")
 * as `{value: …}`.
 */
function messageOf(output: unknown): string | null {
  if (output === null || output === undefined) return null;
  const record = output as { message?: unknown; value?: unknown };
  const inner = record.value as { message?: unknown } | null | undefined;
  const message =
    typeof record.message === 'string'
      ? record.message
      : typeof record.value === 'string'
        ? record.value
        : typeof inner?.message === 'string'
          ? inner.message
          : JSON.stringify(output);
  return message.length > messageChars ? `${message.slice(0, messageChars - 1)}…` : message;
}

const columns = 'id::text AS id, name, state::text AS state, retry_count, retry_limit, created_on, started_on, completed_on, output';

/** Newest first. Internal pg-boss queues are left out unless asked for by name. */
export async function listJobs(db: Database, filter: JobFilter = {}): Promise<JobSummary[]> {
  if (!(await installed(db))) return [];
  const where = `($1::text IS NULL OR state::text = $1) AND ($2::text IS NULL OR name = $2) AND ($2::text IS NOT NULL OR NOT starts_with(name, '${internalQueuePrefix}'))`;
  const result = await db.query<Record<string, unknown>>(
    `SELECT * FROM (
       SELECT ${columns}, false AS archived FROM ${jobsSchema}.job WHERE ${where}
       UNION ALL
       SELECT ${columns}, true AS archived FROM ${jobsSchema}.archive WHERE ${where}
     ) jobs
     ORDER BY created_on DESC, id
     LIMIT $3`,
    [filter.state ?? null, filter.queue ?? null, filter.limit ?? 50],
  );
  return result.rows.map((row) => ({
    id: String(row.id),
    queue: String(row.name),
    state: row.state as JobState,
    retryCount: Number(row.retry_count),
    retryLimit: Number(row.retry_limit),
    createdOn: iso(row.created_on)!,
    startedOn: iso(row.started_on),
    completedOn: iso(row.completed_on),
    message: messageOf(row.output),
    archived: row.archived === true,
  }));
}

export interface RetriedJob {
  id: string;
  queue: string;
  /** It was brought back from the archive. */
  fromArchive: boolean;
}

// One more try: the limit grows by one. `completed_on` is cleared, or maintenance would archive the
// waiting job as finished; `keep_until` is pushed out, or it would be archived as never started.
const retryInPlaceSql = `
  UPDATE ${jobsSchema}.job
     SET state = 'retry', retry_limit = retry_limit + 1, completed_on = NULL, start_after = now(),
         keep_until = GREATEST(keep_until, now() + interval '14 days')
   WHERE id = $1::uuid AND state = 'failed'
  RETURNING name`;

const jobColumns =
  'id, name, priority, data, state, retry_limit, retry_count, retry_delay, retry_backoff, start_after, started_on, singleton_key, singleton_on, expire_in, created_on, completed_on, keep_until, dead_letter, policy, output';

const retryFromArchiveSql = `
  WITH moved AS (DELETE FROM ${jobsSchema}.archive WHERE id = $1::uuid AND state = 'failed' RETURNING *)
  INSERT INTO ${jobsSchema}.job (${jobColumns})
  SELECT id, name, priority, data, 'retry', retry_limit + 1, retry_count, retry_delay, retry_backoff, now(), started_on, singleton_key,
         singleton_on, expire_in, created_on, NULL, GREATEST(keep_until, now() + interval '14 days'), dead_letter, policy, output
    FROM moved
  RETURNING name`;

/**
 * Puts a failed job (live or archived) back in the queue for one more try.
 * With an actor, the retry is recorded in the audit log in the same transaction.
 */
export async function retryJob(db: Database, id: string, actor?: AuditActor): Promise<RetriedJob> {
  if (!isUuid(id)) throw new ExaiError('invalid_argument', `${JSON.stringify(id)} is not a job id: use the id (a uuid) that \`exai jobs list --failed\` shows.`);
  if (!(await installed(db))) throw new ExaiError('not_found', `No job ${id}: no job has ever been queued here.`);
  try {
    return await db.transaction(async (tx) => {
      let fromArchive = false;
      let rows = (await tx.query<{ name: string }>(retryInPlaceSql, [id])).rows;
      if (rows.length === 0) {
        rows = (await tx.query<{ name: string }>(retryFromArchiveSql, [id])).rows;
        fromArchive = true;
      }
      const queue = rows[0]?.name;
      if (queue === undefined) {
        const found = await tx.query<{ state: string }>(
          `SELECT state::text AS state FROM ${jobsSchema}.job WHERE id = $1::uuid UNION ALL SELECT state::text FROM ${jobsSchema}.archive WHERE id = $1::uuid`,
          [id],
        );
        const state = found.rows[0]?.state;
        if (state === undefined) throw new ExaiError('not_found', `No job ${id} (\`exai jobs list --failed\` shows the failed ones).`);
        throw new ExaiError('conflict', `Job ${id} is ${state}, not failed: only failed jobs can be retried.`);
      }
      if (actor !== undefined) {
        await tx.query(switchToServiceSql);
        await recordAudit(tx, actor, { action: 'job.retry', target: id, outcome: 'success', details: { queue, from_archive: fromArchive } });
      }
      return { id, queue, fromArchive };
    });
  } catch (error) {
    // A singleton queue holds one waiting job at a time.
    if (sqlState(error) === '23505') throw new ExaiError('conflict', `Job ${id} cannot be retried while another job of its queue is waiting; try again once that one has run.`);
    throw error;
  }
}
