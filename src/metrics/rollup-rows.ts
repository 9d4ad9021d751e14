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

/** Roll-up rows of every user together: the same groups without user and key. */
export function everyoneRows(rows: Iterable<RollupRow>): RollupRow[] {
  const groups = new Map<string, RollupRow>();
  for (const row of rows) {
    const key = JSON.stringify([row.kind, row.tool, row.model, row.provider, row.param_hash]);
    const group = groups.get(key);
    if (group === undefined) {
      // A copy: the per-user row's sketch must not change when others are added to this one.
      const sketch = DurationSketch.empty();
      sketch.merge(row.sketch);
      groups.set(key, { ...row, user_id: null, api_key_id: null, sketch });
    } else {
      addInto(group, row);
    }
  }
  return [...groups.values()];
}

type RollupTable = 'performance_hourly' | 'performance_daily' | 'performance_daily_all';

/** The columns of a roll-up table, each with its array type and its value in a row; the everyone table has no owner columns. */
function columnsOf(table: RollupTable): [string, string, (row: RollupRow) => unknown][] {
  const owner: [string, string, (row: RollupRow) => unknown][] =
    table === 'performance_daily_all'
      ? []
      : [
          ['user_id', 'uuid', (r) => r.user_id],
          ['api_key_id', 'uuid', (r) => r.api_key_id],
        ];
  return [
    ['bucket', 'timestamptz', (r) => r.bucket],
    ...owner,
    ['kind', 'text', (r) => r.kind],
    ['tool', 'text', (r) => r.tool],
    ['model', 'text', (r) => r.model],
    ['provider', 'text', (r) => r.provider],
    ['param_hash', 'text', (r) => r.param_hash],
    ['call_count', 'bigint', (r) => r.call_count],
    ['error_count', 'bigint', (r) => r.error_count],
    ['duration_sum_ms', 'float8', (r) => r.duration_sum_ms],
    ['avg_duration_ms', 'float8', (r) => (r.call_count === 0 ? 0 : r.duration_sum_ms / r.call_count)],
    ['min_ms', 'float8', (r) => r.min_ms],
    ['max_ms', 'float8', (r) => r.max_ms],
    ['p50_ms', 'float8', (r) => r.sketch.quantile(0.5)],
    ['p95_ms', 'float8', (r) => r.sketch.quantile(0.95)],
    ['p99_ms', 'float8', (r) => r.sketch.quantile(0.99)],
    ['ttft_count', 'bigint', (r) => r.ttft_count],
    ['ttft_sum_ms', 'float8', (r) => r.ttft_sum_ms],
    ['input_tokens', 'bigint', (r) => r.input_tokens],
    ['output_tokens', 'bigint', (r) => r.output_tokens],
    ['cost_usd', 'float8', (r) => r.cost_usd],
    ['sketch', 'bytea', (r) => r.sketch.encode()],
  ];
}

/** One `INSERT … SELECT * FROM unnest(…)` of roll-up rows into `table`, with its parameters. */
export function insertRollups(table: RollupTable, rows: RollupRow[]): { sql: string; params: unknown[] } {
  const columns = columnsOf(table);
  return {
    sql: `INSERT INTO exai.${table} (${columns.map(([name]) => name).join(', ')})
      SELECT * FROM unnest(${columns.map(([, type], index) => `$${index + 1}::${type}[]`).join(', ')})`,
    params: columns.map(([, , value]) => rows.map(value)),
  };
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
