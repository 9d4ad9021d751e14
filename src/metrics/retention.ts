/**
 * Retention: raw calls 7 days (whole day partitions are dropped, which takes
 * no long lock and leaves no dead rows), hourly rows 90 days and daily rows
 * 2 years (small tables: deleted in batches so no statement holds locks for
 * long). Stale hours are rolled up before their raw calls go.
 */
import type { Database } from '../db/types.js';
import type { Logger } from '../logger.js';
import { asService } from '../db/session.js';
import { dailyRetentionDays, dayMs, hourlyRetentionDays, rawRetentionDays, startOfDay, utcDay } from './buckets.js';
import { ensureMetricsPartitions } from './metrics-store.js';
import { rollUpPending } from './rollups.js';

export interface RetentionResult {
  partitionsDropped: number;
  hourlyDeleted: number;
  dailyDeleted: number;
  alertEventsDeleted: number;
}

const batchSize = 5_000;

async function deleteInBatches(db: Database, table: string, column: string, before: Date): Promise<number> {
  let total = 0;
  for (;;) {
    const result = await asService(db, (tx) =>
      tx.query(
        `DELETE FROM exai.${table} WHERE ctid IN (SELECT ctid FROM exai.${table} WHERE ${column} < $1 LIMIT ${batchSize})`,
        [before],
      ),
    );
    total += result.affectedRows;
    if (result.affectedRows < batchSize) return total;
  }
}

/**
 * Drops the raw partitions of days before `before`, one per transaction. The
 * drop needs an exclusive lock on the raw table; a short lock_timeout makes it
 * give way to long readers (and the writes queued behind them) instead, and
 * the next run tries again.
 */
async function dropOldPartitions(db: Database, before: Date, logger: Logger | undefined): Promise<number> {
  const days = await asService(db, (tx) =>
    tx.query<{ day: string }>(`SELECT to_char(day, 'YYYY-MM-DD') AS day FROM exai.metrics_partition_days_before($1::date) AS day`, [utcDay(before)]),
  );
  let dropped = 0;
  for (const { day } of days.rows) {
    if (await dropMetricsPartition(db, day)) dropped += 1;
    else logger?.warn({ day }, 'a metrics partition was busy; it is dropped on the next retention run');
  }
  return dropped;
}

/** Drops one day's raw partition (`YYYY-MM-DD`); false when it was busy past the lock timeout. */
export async function dropMetricsPartition(db: Database, day: string): Promise<boolean> {
  try {
    await asService(db, async (tx) => {
      await tx.query(`SELECT set_config('lock_timeout', '2s', true)`);
      await tx.query('SELECT exai.drop_metrics_partition($1::date)', [day]);
    });
    return true;
  } catch (error) {
    const code = (error as { cause?: { code?: unknown } }).cause?.code;
    if (code === '55P03') return false;
    throw error;
  }
}

/** Alert events past retention, except each rule's latest: it holds whether the rule is firing. */
async function deleteOldAlertEvents(db: Database, before: Date): Promise<number> {
  const result = await asService(db, (tx) =>
    tx.query(
      `DELETE FROM exai.alert_events e
        WHERE e.at < $1 AND e.id <> (SELECT max(l.id) FROM exai.alert_events l WHERE l.rule = e.rule)`,
      [before],
    ),
  );
  return result.affectedRows;
}

export async function applyRetention(db: Database, options: { now?: number; logger?: Logger; signal?: AbortSignal } = {}): Promise<RetentionResult> {
  const today = startOfDay(new Date(options.now ?? Date.now())).getTime();
  const rawKeptFrom = new Date(today - rawRetentionDays * dayMs);
  // Anything still stale in the days about to go is rolled up while its raw calls exist.
  await rollUpPending(db, { before: rawKeptFrom, ...(options.signal === undefined ? {} : { signal: options.signal }) });
  const partitionsDropped = await dropOldPartitions(db, rawKeptFrom, options.logger);
  // Partitions for the coming days exist before the first call needs them.
  await asService(db, (tx) => ensureMetricsPartitions(tx, [0, 1, 2].map((ahead) => utcDay(new Date(today + ahead * dayMs)))));
  return {
    partitionsDropped,
    hourlyDeleted: await deleteInBatches(db, 'performance_hourly', 'bucket', new Date(today - hourlyRetentionDays * dayMs)),
    dailyDeleted:
      (await deleteInBatches(db, 'performance_daily', 'bucket', new Date(today - dailyRetentionDays * dayMs))) +
      (await deleteInBatches(db, 'performance_daily_all', 'bucket', new Date(today - dailyRetentionDays * dayMs))),
    alertEventsDeleted: await deleteOldAlertEvents(db, new Date(today - hourlyRetentionDays * dayMs)),
  };
}
