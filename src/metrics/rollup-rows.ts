/**
 * The shape shared by hourly and daily roll-up rows, and how groups of them
 * (or raw calls) combine: counts and sums add, sketches merge.
 */
import { DurationSketch } from './sketch.js';

export const groupColumns = ['user_id', 'api_key_id', 'kind', 'tool', 'model', 'provider', 'param_hash'] as const;

export interface RollupRow {
  bucket: Date;
  user_id: string | null;
  api_key_id: string | null;
  kind: 'tool' | 'provider';
  tool: string | null;
  model: string | null;
  provider: string | null;
  param_hash: string;
  call_count: number;
  error_count: number;
  duration_sum_ms: number;
  min_ms: number;
  max_ms: number;
  ttft_count: number;
  ttft_sum_ms: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  sketch: DurationSketch;
}

/** SQL aggregates over raw calls, named as the roll-up columns; the durations come separately. */
export const rawAggregatesSql = `
  count(*)::float8 AS call_count,
  (count(*) FILTER (WHERE outcome <> 'ok'))::float8 AS error_count,
  sum(duration_ms) AS duration_sum_ms,
  min(duration_ms) AS min_ms,
  max(duration_ms) AS max_ms,
  count(ttft_ms)::float8 AS ttft_count,
  coalesce(sum(ttft_ms), 0) AS ttft_sum_ms,
  sum(input_tokens)::float8 AS input_tokens,
  sum(output_tokens)::float8 AS output_tokens,
  coalesce(sum(cost_usd), 0) AS cost_usd`;

/** Combines `row` into `into` (same group). */
export function addInto(into: RollupRow, row: RollupRow): void {
  into.call_count += row.call_count;
  into.error_count += row.error_count;
  into.duration_sum_ms += row.duration_sum_ms;
  into.min_ms = Math.min(into.min_ms, row.min_ms);
  into.max_ms = Math.max(into.max_ms, row.max_ms);
  into.ttft_count += row.ttft_count;
  into.ttft_sum_ms += row.ttft_sum_ms;
  into.input_tokens += row.input_tokens;
  into.output_tokens += row.output_tokens;
  into.cost_usd += row.cost_usd;
  into.sketch.merge(row.sketch);
}

/** Column arrays for `INSERT … SELECT * FROM unnest(…)` of roll-up rows. */
export function rollupColumns(rows: RollupRow[]): unknown[] {
  return [
    rows.map((r) => r.bucket),
    rows.map((r) => r.user_id),
    rows.map((r) => r.api_key_id),
    rows.map((r) => r.kind),
    rows.map((r) => r.tool),
    rows.map((r) => r.model),
    rows.map((r) => r.provider),
    rows.map((r) => r.param_hash),
    rows.map((r) => r.call_count),
    rows.map((r) => r.error_count),
    rows.map((r) => r.duration_sum_ms),
    rows.map((r) => (r.call_count === 0 ? 0 : r.duration_sum_ms / r.call_count)),
    rows.map((r) => r.min_ms),
    rows.map((r) => r.max_ms),
    rows.map((r) => r.sketch.quantile(0.5)),
    rows.map((r) => r.sketch.quantile(0.95)),
    rows.map((r) => r.sketch.quantile(0.99)),
    rows.map((r) => r.ttft_count),
    rows.map((r) => r.ttft_sum_ms),
    rows.map((r) => r.input_tokens),
    rows.map((r) => r.output_tokens),
    rows.map((r) => r.cost_usd),
    rows.map((r) => r.sketch.encode()),
  ];
}

export function insertRollupSql(table: 'performance_hourly' | 'performance_daily'): string {
  return `INSERT INTO exai.${table}
    (bucket, user_id, api_key_id, kind, tool, model, provider, param_hash, call_count, error_count,
     duration_sum_ms, avg_duration_ms, min_ms, max_ms, p50_ms, p95_ms, p99_ms, ttft_count, ttft_sum_ms,
     input_tokens, output_tokens, cost_usd, sketch)
    SELECT * FROM unnest($1::timestamptz[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
      $8::text[], $9::bigint[], $10::bigint[], $11::float8[], $12::float8[], $13::float8[], $14::float8[],
      $15::float8[], $16::float8[], $17::float8[], $18::bigint[], $19::float8[], $20::bigint[], $21::bigint[],
      $22::float8[], $23::bytea[])`;
}

/** A row read from SQL: numbers may come back as strings (bigint) and durations or a sketch. */
export function toRollupRow(row: Record<string, unknown>): RollupRow {
  const durations = row.durations as number[] | null | undefined;
  const bytes = row.sketch as Uint8Array | null | undefined;
  const sketch = bytes != null ? DurationSketch.decode(bytes) : DurationSketch.of((durations ?? []).map(Number));
  return {
    bucket: row.bucket instanceof Date ? row.bucket : new Date(String(row.bucket)),
    user_id: (row.user_id as string | null) ?? null,
    api_key_id: (row.api_key_id as string | null) ?? null,
    kind: row.kind as RollupRow['kind'],
    tool: (row.tool as string | null) ?? null,
    model: (row.model as string | null) ?? null,
    provider: (row.provider as string | null) ?? null,
    param_hash: String(row.param_hash),
    call_count: Number(row.call_count),
    error_count: Number(row.error_count),
    duration_sum_ms: Number(row.duration_sum_ms),
    min_ms: Number(row.min_ms),
    max_ms: Number(row.max_ms),
    ttft_count: Number(row.ttft_count),
    ttft_sum_ms: Number(row.ttft_sum_ms),
    input_tokens: Number(row.input_tokens),
    output_tokens: Number(row.output_tokens),
    cost_usd: Number(row.cost_usd),
    sketch,
  };
}
