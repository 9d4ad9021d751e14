/**
 * Retention: raw calls 7 days (whole day partitions are dropped, which takes
 * no long lock and leaves no dead rows), hourly rows 90 days and daily rows
 * 2 years (small tables: deleted in batches so no statement holds locks for
 * long). Stale hours are rolled up before their raw calls go.
 */
import type { Database } from '../db/types.js';
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

export async function applyRetention(db: Database, now = Date.now()): Promise<RetentionResult> {
  const today = startOfDay(new Date(now)).getTime();
  const rawKeptFrom = new Date(today - rawRetentionDays * dayMs);
  // Anything still stale in the days about to go is rolled up while its raw calls exist.
  await rollUpPending(db, { before: rawKeptFrom });
  const dropped = await asService(db, (tx) =>
    tx.query<{ n: number }>('SELECT exai.drop_metrics_partitions_before($1::date) AS n', [utcDay(rawKeptFrom)]),
  );
  // Partitions for the coming days exist before the first call needs them.
  await asService(db, (tx) => ensureMetricsPartitions(tx, [0, 1, 2].map((ahead) => utcDay(new Date(today + ahead * dayMs)))));
  return {
    partitionsDropped: Number(dropped.rows[0]?.n ?? 0),
    hourlyDeleted: await deleteInBatches(db, 'performance_hourly', 'bucket', new Date(today - hourlyRetentionDays * dayMs)),
    dailyDeleted: await deleteInBatches(db, 'performance_daily', 'bucket', new Date(today - dailyRetentionDays * dayMs)),
    alertEventsDeleted: await deleteInBatches(db, 'alert_events', 'at', new Date(today - hourlyRetentionDays * dayMs)),
  };
}
