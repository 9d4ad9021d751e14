/**
 * "retention": how exai removes a day of raw calls (drop the day's partition,
 * one transaction with a short lock_timeout: `dropMetricsPartition`) beside
 * the other way the issue names, batched DELETEs of the same rows (5,000 per
 * statement) from an unpartitioned table with the same columns and index.
 * Informational (no target): it is the measurement behind the choice, with
 * what each leaves behind (the table's size on disk afterwards).
 */
import { performance } from 'node:perf_hooks';
import { dayMs, startOfDay, utcDay } from '../src/metrics/buckets.js';
import { dropMetricsPartition } from '../src/metrics/retention.js';
import { makeResult, type BenchContext, type BenchResult } from './harness.js';

const plainTable = 'exai.bench_retention_plain';
const deleteBatch = 5_000;

function fillSql(table: string): string {
  // One day of calls, spread evenly, as the superuser (the bench's own database).
  return `INSERT INTO ${table} (at, kind, tool, model, provider, param_hash, duration_ms, input_tokens, output_tokens, outcome, user_id)
    SELECT $1::timestamptz + (i * (86399999.0 / $2)) * interval '1 millisecond', 'provider', 'chat', 'glm-4.6', 'glm',
           '0123456789abcdef', 50 + (i % 997), 100, 20, 'ok', ('00000000-0000-0000-0000-00000000000' || (i % 10))::uuid
      FROM generate_series(1, $2::int) AS i`;
}

async function sizeOf(context: BenchContext, table: string): Promise<number> {
  const result = await context.backend.db.query<{ bytes: string | null }>(`SELECT pg_total_relation_size(to_regclass($1))::text AS bytes`, [table]);
  return Number(result.rows[0]?.bytes ?? 0);
}

export async function measureRetention(context: BenchContext): Promise<BenchResult> {
  const { backend, quick, progress } = context;
  const { db } = backend;
  const rows = quick ? 50_000 : 300_000;
  const rounds = quick ? 1 : 3;
  // A day long past, which no other figure touches.
  const dayStart = new Date(startOfDay(new Date()).getTime() - 40 * dayMs);
  const day = utcDay(dayStart);
  await db.exec(`DROP TABLE IF EXISTS ${plainTable}; CREATE TABLE ${plainTable} (LIKE exai.performance_metrics); CREATE INDEX ON ${plainTable} (at)`);
  const projectMs: number[] = [];
  const baselineMs: number[] = [];
  let plainBytesAfter = 0;
  let plainBytesBefore = 0;
  try {
    for (let round = 0; round < rounds; round += 1) {
      await db.query('SELECT exai.ensure_metrics_partition($1::date)', [day]);
      await db.query(fillSql('exai.performance_metrics'), [dayStart, rows]);
      await db.exec(`TRUNCATE ${plainTable}`);
      await db.query(fillSql(plainTable), [dayStart, rows]);
      plainBytesBefore = await sizeOf(context, plainTable);

      let started = performance.now();
      if (!(await dropMetricsPartition(db, day))) throw new Error('metrics bench: the partition was busy');
      projectMs.push(performance.now() - started);

      started = performance.now();
      for (;;) {
        const deleted = await db.query(
          `DELETE FROM ${plainTable} WHERE ctid IN (SELECT ctid FROM ${plainTable} WHERE at < $1 LIMIT ${deleteBatch})`,
          [new Date(dayStart.getTime() + dayMs)],
        );
        if (deleted.affectedRows < deleteBatch) break;
      }
      baselineMs.push(performance.now() - started);
      plainBytesAfter = await sizeOf(context, plainTable);
    }
  } finally {
    await db.exec(`DROP TABLE IF EXISTS ${plainTable}`);
    await dropMetricsPartition(db, day).catch(() => undefined);
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const project = median(projectMs);
  const baseline = median(baselineMs);
  progress(`retention: drop a day's partition ${project.toFixed(1)} ms, batched DELETE ${baseline.toFixed(0)} ms (${rows} rows)`);
  return makeResult({
    name: `metrics: retention, remove one day of ${rows.toLocaleString('en')} raw calls (ms)`,
    backend: backend.name,
    value: project,
    unit: 'ms',
    baseline,
    better: 'lower',
    target: null,
    notes:
      `project: dropMetricsPartition (exai.drop_metrics_partition in its own transaction as service_role, lock_timeout 2 s) of a day partition ` +
      `holding ${rows} calls; baseline: DELETE … WHERE ctid IN (SELECT … LIMIT ${deleteBatch}) until done, from an unpartitioned copy of the ` +
      `table (same columns, index on at) holding the same rows. Median of ${rounds} round(s); filling is not timed. Informational: the ` +
      `measurement behind choosing partitions for raw calls.`,
    details: {
      'dropped partition: bytes left behind': 0,
      'batched DELETE: table bytes before': plainBytesBefore,
      'batched DELETE: table bytes left behind (dead rows until VACUUM)': plainBytesAfter,
      'batched DELETE: statements': Math.ceil(rows / deleteBatch),
    },
  });
}
