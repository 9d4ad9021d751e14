/**
 * Answers questions over any time range from the cheapest correct source:
 * daily rows for settled days, hourly rows for settled hours, and raw calls
 * for the hours whose roll-up is stale, so an answer includes calls flushed a
 * second ago. Groups are combined by adding counts and merging sketches.
 * Runs as the user (row-level security shows only their calls) unless the
 * caller may see everyone's.
 */
import type { Database, Queryable } from '../db/types.js';
import { asService, asUser } from '../db/session.js';
import { dayMs, hourMs } from './buckets.js';
import { groupColumns, rawAggregatesSql } from './rollup-rows.js';
import { DurationSketch } from './sketch.js';

export type Resolution = 'hour' | 'day';
export const groupKeys = ['tool', 'model', 'provider', 'kind', 'param_hash', 'user_id', 'api_key_id'] as const;
export type GroupKey = (typeof groupKeys)[number];

export interface StatsFilter {
  kind?: 'tool' | 'provider';
  tool?: string;
  model?: string;
  provider?: string;
  userId?: string;
}

export interface StatsQuery {
  from: Date;
  to: Date;
  resolution: Resolution;
  /** One row per bucket and group (a trend), or one per group over the whole range. */
  bucketed: boolean;
  groupBy: readonly GroupKey[];
  filter?: StatsFilter;
}

/** Whose numbers: one user's (through row-level security) or everyone's (admin). */
export interface StatsScope {
  db: Database;
  userId: string;
  everyone: boolean;
  /** With `everyone`: only this user's calls (an operator asking about one user). */
  onlyUserId?: string;
}

export interface StatsRow {
  bucket?: string;
  tool?: string | null;
  model?: string | null;
  provider?: string | null;
  kind?: string;
  param_hash?: string;
  user_id?: string | null;
  api_key_id?: string | null;
  call_count: number;
  error_count: number;
  error_rate: number;
  avg_ms: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  max_ms: number;
  avg_ttft_ms: number | null;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

const measureColumns = ['call_count', 'error_count', 'duration_sum_ms', 'min_ms', 'max_ms', 'ttft_count', 'ttft_sum_ms',
  'input_tokens', 'output_tokens', 'cost_usd', 'p50_ms', 'p95_ms', 'p99_ms', 'sketch'] as const;
const measureColumnsSql = measureColumns.join(', ');
const rollupColumnsSql = [...groupColumns, ...measureColumns].join(', ');
const qualifiedRollupColumnsSql = (alias: string) => [...groupColumns, ...measureColumns].map((column) => `${alias}.${column}`).join(', ');
/** performance_daily_all has no owner columns. */
const everyoneColumnsSql = `NULL::uuid AS user_id, NULL::uuid AS api_key_id, kind, tool, model, provider, param_hash, ${measureColumnsSql}`;

/** Sums over stored roll-up rows, one result row per answer group, in the order of rawAggregatesSql; floats, so both drivers give numbers. */
const rolledAggregatesSql = `
  sum(call_count)::float8 AS call_count, sum(error_count)::float8 AS error_count, sum(duration_sum_ms) AS duration_sum_ms,
  min(min_ms) AS min_ms, max(max_ms) AS max_ms, sum(ttft_count)::float8 AS ttft_count, sum(ttft_sum_ms) AS ttft_sum_ms,
  sum(input_tokens)::float8 AS input_tokens, sum(output_tokens)::float8 AS output_tokens, sum(cost_usd) AS cost_usd,
  CASE WHEN count(*) = 1 THEN min(p50_ms) END AS p50_ms,
  CASE WHEN count(*) = 1 THEN min(p95_ms) END AS p95_ms,
  CASE WHEN count(*) = 1 THEN min(p99_ms) END AS p99_ms,
  encode(string_agg(sketch, ''::bytea), 'base64') AS sketches,
  NULL::float8[] AS durations`;

/** The same over raw calls of stale hours (the roll-ups' own aggregates); their durations go along to be sketched. */
const rawAggregatesForAnswer = `${rawAggregatesSql},
  NULL::float8 AS p50_ms, NULL::float8 AS p95_ms, NULL::float8 AS p99_ms, NULL::text AS sketches,
  array_agg(duration_ms) AS durations`;

function filterSql(filter: StatsFilter, params: unknown[], alias = ''): string {
  const clauses: string[] = [];
  const add = (column: string, value: unknown) => {
    params.push(value);
    clauses.push(`${alias}${column} = $${params.length}`);
  };
  if (filter.kind !== undefined) add('kind', filter.kind);
  if (filter.tool !== undefined) add('tool', filter.tool);
  if (filter.model !== undefined) add('model', filter.model);
  if (filter.provider !== undefined) add('provider', filter.provider);
  if (filter.userId !== undefined) add('user_id', filter.userId);
  return clauses.map((clause) => ` AND ${clause}`).join('');
}

export function alignRange(from: Date, to: Date, resolution: Resolution): { from: Date; to: Date } {
  const step = resolution === 'hour' ? hourMs : dayMs;
  return { from: new Date(Math.floor(from.getTime() / step) * step), to: new Date(Math.ceil(to.getTime() / step) * step) };
}

/**
 * One statement: stored roll-ups (daily rows for settled days, hourly rows for
 * settled hours) and raw calls of stale hours, each already summed per answer
 * group in the database, so only one or two rows per group (and the sketches
 * to merge) reach JavaScript. Group columns come from a fixed list.
 */
function sourceSql(query: StatsQuery, params: unknown[], everyone: boolean): string {
  const filter = query.filter ?? {};
  // Everyone's calls, not split or filtered by user or key: the everyone roll-up has the same answer in far fewer rows.
  const wholeTeam = everyone && filter.userId === undefined && !query.groupBy.some((column) => column === 'user_id' || column === 'api_key_id');
  const outBucket = (column: string) => (query.bucketed ? `date_trunc('${query.resolution}', ${column}, 'UTC')` : 'NULL::timestamptz');
  const keys = query.groupBy.map((column) => `, ${column}`).join('');
  const rawKeys = query.groupBy.map((column) => `, m.${column} AS ${column}`).join('');
  const marks = `WITH marks AS (
      SELECT level, bucket FROM exai.rollup_pending WHERE bucket >= $1::timestamptz - interval '1 day' AND bucket < $2
    ), dirty_days AS (
      SELECT DISTINCT date_trunc('day', bucket, 'UTC') AS d FROM marks
    ), dirty_hours AS (
      SELECT bucket AS h FROM marks WHERE level = 'hour' AND bucket >= $1
    )`;
  // Functions: each adds its filter's parameters only when its part is used.
  const hourly = () => `SELECT bucket, ${rollupColumnsSql} FROM exai.performance_hourly
      WHERE bucket >= $1 AND bucket < $2 AND bucket NOT IN (SELECT h FROM dirty_hours)${filterSql(filter, params)}`;
  // For daily answers only the hours of unsettled days, found by range so the index on bucket serves.
  const hourlyOfDirtyDays = () => `SELECT ho.bucket, ${qualifiedRollupColumnsSql('ho')}
      FROM dirty_days dd JOIN exai.performance_hourly ho ON ho.bucket >= dd.d AND ho.bucket < dd.d + interval '1 day'
     WHERE ho.bucket >= $1 AND ho.bucket < $2 AND ho.bucket NOT IN (SELECT h FROM dirty_hours)${filterSql(filter, params, 'ho.')}`;
  const daily = () =>
    `SELECT bucket, ${wholeTeam ? everyoneColumnsSql : rollupColumnsSql}
       FROM exai.${wholeTeam ? 'performance_daily_all' : 'performance_daily'}
      WHERE bucket >= $1 AND bucket < $2 AND bucket NOT IN (SELECT d FROM dirty_days)${filterSql(filter, params)}`;
  const stored = query.resolution === 'hour' ? hourly() : `${daily()} UNION ALL ${hourlyOfDirtyDays()}`;
  const groupCount = query.groupBy.length + 1;
  const groupList = Array.from({ length: groupCount }, (_, index) => String(index + 1)).join(', ');
  return `${marks}, stored AS (${stored})
    SELECT ${outBucket('bucket')} AS bucket${keys}, ${rolledAggregatesSql}
      FROM stored GROUP BY ${groupList}
    UNION ALL
    SELECT ${outBucket('dh.h')} AS bucket${rawKeys}, ${rawAggregatesForAnswer}
      FROM dirty_hours dh JOIN exai.performance_metrics m ON m.at >= dh.h AND m.at < dh.h + interval '1 hour'
     WHERE true${filterSql(filter, params, 'm.')}
     GROUP BY ${groupList}`;
}

interface Accumulator {
  key: Record<string, unknown>;
  rows: Record<string, unknown>[];
}

function summarize(group: Accumulator): StatsRow {
  let calls = 0;
  let errors = 0;
  let durationSum = 0;
  let max = 0;
  let ttftCount = 0;
  let ttftSum = 0;
  let input = 0;
  let output = 0;
  let cost = 0;
  for (const row of group.rows) {
    calls += Number(row.call_count);
    errors += Number(row.error_count);
    durationSum += Number(row.duration_sum_ms);
    max = Math.max(max, Number(row.max_ms));
    ttftCount += Number(row.ttft_count);
    ttftSum += Number(row.ttft_sum_ms);
    input += Number(row.input_tokens);
    output += Number(row.output_tokens);
    cost += Number(row.cost_usd);
  }
  let percentiles: [number, number, number];
  const only = group.rows.length === 1 ? group.rows[0] : undefined;
  if (only !== undefined && only.p50_ms !== null && only.p50_ms !== undefined) {
    // One stored roll-up row already carries its percentiles: no sketch to decode.
    percentiles = [Number(only.p50_ms), Number(only.p95_ms), Number(only.p99_ms)];
  } else {
    const merged = DurationSketch.empty();
    for (const row of group.rows) {
      // A group's stored sketches arrive as one value: their encodings back to back, in base64
      // (which both drivers hand over as plain text, far cheaper to parse than arrays or bytea).
      if (typeof row.sketches === 'string') merged.mergeEncoded(Buffer.from(row.sketches, 'base64'));
      for (const value of (row.durations as number[] | null) ?? []) merged.add(Number(value));
    }
    percentiles = [merged.quantile(0.5), merged.quantile(0.95), merged.quantile(0.99)];
  }
  return {
    ...(group.key as Partial<StatsRow>),
    call_count: calls,
    error_count: errors,
    error_rate: calls === 0 ? 0 : errors / calls,
    avg_ms: calls === 0 ? 0 : durationSum / calls,
    p50_ms: percentiles[0],
    p95_ms: percentiles[1],
    p99_ms: percentiles[2],
    max_ms: max,
    avg_ttft_ms: ttftCount === 0 ? null : ttftSum / ttftCount,
    input_tokens: input,
    output_tokens: output,
    cost_usd: cost,
  };
}

function read<T>(scope: StatsScope, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return scope.everyone ? asService(scope.db, fn) : asUser(scope.db, scope.userId, fn);
}

/** Rows ordered by bucket (when bucketed), then by call count, most first. */
export async function queryStats(scope: StatsScope, query: StatsQuery): Promise<StatsRow[]> {
  const range = alignRange(query.from, query.to, query.resolution);
  const params: unknown[] = [range.from, range.to];
  const filter = scope.onlyUserId === undefined ? query.filter : { ...query.filter, userId: scope.onlyUserId };
  const sql = sourceSql({ ...query, ...(filter === undefined ? {} : { filter }) }, params, scope.everyone);
  const result = await read(scope, (tx) => tx.query(sql, params));
  const groups = new Map<string, Accumulator>();
  for (const row of result.rows) {
    const key: Record<string, unknown> = {};
    if (query.bucketed) key.bucket = new Date(row.bucket as string | Date).toISOString();
    for (const column of query.groupBy) key[column] = row[column] ?? null;
    const id = JSON.stringify(key);
    let group = groups.get(id);
    if (group === undefined) groups.set(id, (group = { key, rows: [] }));
    group.rows.push(row);
  }
  const rows = [...groups.values()].map(summarize);
  return rows.sort((a, b) => (a.bucket ?? '').localeCompare(b.bucket ?? '') || b.call_count - a.call_count);
}
