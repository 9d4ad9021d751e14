/**
 * The roll-up jobs. An hour is rebuilt from its raw calls, a day by merging
 * its hourly rows; each rebuild replaces the bucket's rows in one transaction
 * and clears the bucket's stale mark, so a rebuild is idempotent, may run
 * again over any window, and picks up calls that arrived late (their flush
 * marked the hour stale again). The stale mark is locked while a bucket is
 * rebuilt: a second instance skips it, and a flush into that hour waits and
 * then marks it again.
 */
import type { Database, Queryable } from '../db/types.js';
import { asService } from '../db/session.js';
import { dayMs, hourlyRetentionDays, hourMs, startOfDay } from './buckets.js';
import { addInto, everyoneRows, groupColumns, insertRollups, rawAggregatesSql, toRollupRow, type RollupRow } from './rollup-rows.js';

const groupList = groupColumns.join(', ');

export interface RollupResult {
  hours: number;
  days: number;
}

async function lockMark(tx: Queryable, level: 'hour' | 'day', bucket: Date): Promise<boolean> {
  const locked = await tx.query(
    'SELECT 1 FROM exai.rollup_pending WHERE level = $1 AND bucket = $2 FOR UPDATE SKIP LOCKED',
    [level, bucket],
  );
  return locked.rows.length > 0;
}

/**
 * Stale buckets, oldest first. A day waits while any of its hours is stale:
 * its hours' rebuilds would mark it again anyway, and readers take a day with
 * stale hours from hourly and raw rows, so today is merged once its hours settle
 * rather than every minute.
 */
async function pendingBuckets(db: Database, level: 'hour' | 'day', before: Date | undefined, limit: number): Promise<Date[]> {
  const rows = await asService(db, (tx) =>
    tx.query<{ bucket: Date }>(
      `SELECT p.bucket FROM exai.rollup_pending p
        WHERE p.level = $1 AND ($2::timestamptz IS NULL OR p.bucket < $2)
          AND (p.level = 'hour' OR NOT EXISTS (
                SELECT 1 FROM exai.rollup_pending h
                 WHERE h.level = 'hour' AND h.bucket >= p.bucket AND h.bucket < p.bucket + interval '1 day'))
        ORDER BY p.bucket LIMIT $3`,
      [level, before ?? null, limit],
    ),
  );
  return rows.rows.map((row) => new Date(row.bucket));
}

/** Rebuilds one hour from raw calls; false when another instance holds it or nothing was stale. */
export async function rollUpHour(db: Database, hour: Date): Promise<boolean> {
  return asService(db, async (tx) => {
    if (!(await lockMark(tx, 'hour', hour))) return false;
    // Reading the raw calls locks the parent table, so retention cannot drop the day's partition
    // until this transaction ends; the check after the read therefore tells whether the read saw it.
    const raw = await tx.query(
      `SELECT $1::timestamptz AS bucket, ${groupList}, ${rawAggregatesSql}, array_agg(duration_ms) AS durations
         FROM exai.performance_metrics
        WHERE at >= $1 AND at < $1::timestamptz + interval '1 hour'
        GROUP BY ${groupList}`,
      [hour],
    );
    const partition = await tx.query<{ kept: boolean }>(
      `SELECT to_regclass('exai.performance_metrics_p' || to_char($1::timestamptz AT TIME ZONE 'UTC', 'YYYYMMDD')) IS NOT NULL AS kept`,
      [hour],
    );
    // Once retention dropped an hour's raw calls, its hourly rows are all that is left: keep them.
    if (partition.rows[0]?.kept === true) {
      await tx.query('DELETE FROM exai.performance_hourly WHERE bucket = $1', [hour]);
      const rows = raw.rows.map(toRollupRow);
      if (rows.length > 0) {
        const insert = insertRollups('performance_hourly', rows);
        await tx.query(insert.sql, insert.params);
      }
      await tx.query(
        `INSERT INTO exai.rollup_pending (level, bucket) VALUES ('day', date_trunc('day', $1::timestamptz, 'UTC'))
         ON CONFLICT (level, bucket) DO UPDATE SET version = nextval('exai.rollup_version_seq')`,
        [hour],
      );
    }
    await tx.query(`DELETE FROM exai.rollup_pending WHERE level = 'hour' AND bucket = $1`, [hour]);
    return true;
  });
}

/** Rebuilds one day by merging its hourly sketches. */
export async function rollUpDay(db: Database, day: Date, now = Date.now()): Promise<boolean> {
  return asService(db, async (tx) => {
    if (!(await lockMark(tx, 'day', day))) return false;
    // Past the hourly retention some of the day's hours are gone: its daily rows are all that is left.
    if (day.getTime() < startOfDay(new Date(now)).getTime() - hourlyRetentionDays * dayMs) {
      await tx.query(`DELETE FROM exai.rollup_pending WHERE level = 'day' AND bucket = $1`, [day]);
      return true;
    }
    const hourly = await tx.query(
      `SELECT * FROM exai.performance_hourly WHERE bucket >= $1 AND bucket < $1::timestamptz + interval '1 day'`,
      [day],
    );
    const groups = new Map<string, RollupRow>();
    for (const source of hourly.rows) {
      const row = toRollupRow(source);
      const key = JSON.stringify(groupColumns.map((column) => row[column]));
      const group = groups.get(key);
      if (group === undefined) groups.set(key, { ...row, bucket: day });
      else addInto(group, row);
    }
    await tx.query('DELETE FROM exai.performance_daily WHERE bucket = $1', [day]);
    await tx.query('DELETE FROM exai.performance_daily_all WHERE bucket = $1', [day]);
    if (groups.size > 0) {
      // Everyone's totals first: building them merges copies, the per-user rows stay as they are.
      const everyone = insertRollups('performance_daily_all', everyoneRows(groups.values()));
      await tx.query(everyone.sql, everyone.params);
      const daily = insertRollups('performance_daily', [...groups.values()]);
      await tx.query(daily.sql, daily.params);
    }
    await tx.query(`DELETE FROM exai.rollup_pending WHERE level = 'day' AND bucket = $1`, [day]);
    return true;
  });
}

/** Rebuilds a day's everyone rows from its daily rows (for data loaded without the roll-up, such as the benchmark's). */
export async function rebuildEveryoneDay(db: Database, day: Date): Promise<void> {
  await asService(db, async (tx) => {
    const daily = await tx.query('SELECT * FROM exai.performance_daily WHERE bucket = $1', [day]);
    await tx.query('DELETE FROM exai.performance_daily_all WHERE bucket = $1', [day]);
    if (daily.rows.length === 0) return;
    const insert = insertRollups('performance_daily_all', everyoneRows(daily.rows.map(toRollupRow)));
    await tx.query(insert.sql, insert.params);
  });
}

/** Rebuilds every stale bucket of one level, a page at a time; returns how many it rebuilt. */
async function rollUpLevel(
  db: Database,
  level: 'hour' | 'day',
  rebuild: (db: Database, bucket: Date) => Promise<boolean>,
  options: { before?: Date; signal?: AbortSignal },
): Promise<number> {
  const page = 200;
  let total = 0;
  for (;;) {
    const buckets = await pendingBuckets(db, level, options.before, page);
    let done = 0;
    for (const bucket of buckets) {
      // A job told to stop ends between buckets; what is left stays marked for the next run.
      options.signal?.throwIfAborted();
      if (await rebuild(db, bucket)) done += 1;
    }
    total += done;
    // A short page is the last; a page of buckets other instances hold would only repeat.
    if (buckets.length < page || done === 0) return total;
  }
}

/** Rebuilds every stale hour, then every stale day (optionally only buckets before `before`). */
export async function rollUpPending(db: Database, options: { before?: Date; signal?: AbortSignal } = {}): Promise<RollupResult> {
  const hours = await rollUpLevel(db, 'hour', rollUpHour, options);
  const days = await rollUpLevel(db, 'day', (database, day) => rollUpDay(database, day), options);
  return { hours, days };
}

/** Marks every hour in [from, to) stale, so the next roll-up rebuilds the window. */
export async function markWindowStale(db: Database, from: Date, to: Date): Promise<number> {
  const first = Math.floor(from.getTime() / hourMs) * hourMs;
  const hours: Date[] = [];
  for (let at = first; at < to.getTime(); at += hourMs) hours.push(new Date(at));
  if (hours.length === 0) return 0;
  await asService(db, (tx) =>
    tx.query(
      `INSERT INTO exai.rollup_pending (level, bucket) SELECT 'hour', unnest($1::timestamptz[])
       ON CONFLICT (level, bucket) DO UPDATE SET version = nextval('exai.rollup_version_seq')`,
      [hours],
    ),
  );
  return hours.length;
}
