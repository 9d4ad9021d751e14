/**
 * The answers behind `performance_stats`, `usage_stats`, `exai stats` and
 * `/api/v1/metrics`: ranges resolved, views mapped onto stats queries, rows
 * sorted and cut, and numbers rounded for reading.
 */
import { ExaiError } from '../errors.js';
import { dayMs, hourlyRetentionDays, startOfDay } from './buckets.js';
import { alignRange, queryStats, type GroupKey, type Resolution, type StatsRow, type StatsScope } from './stats-query.js';
import { spanMs, type PerformanceInput, type UsageInput } from './report-input.js';

export interface Range {
  from: Date;
  to: Date;
}

export interface PerformanceReport {
  view: string;
  from: string;
  to: string;
  resolution: Resolution;
  rows: StatsRow[];
  /** More rows matched than `limit`; a trend keeps its latest buckets. */
  truncated: boolean;
}

export interface UsageRow {
  day?: string;
  model?: string | null;
  provider?: string | null;
  tool?: string | null;
  user_id?: string | null;
  api_key_id?: string | null;
  call_count: number;
  error_count: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

export interface UsageReport {
  from: string;
  to: string;
  rows: UsageRow[];
  /** More rows than `limit`; per day, the latest days are kept. The totals count them all. */
  truncated: boolean;
  totals: Omit<UsageRow, 'day' | 'model' | 'provider' | 'tool' | 'user_id' | 'api_key_id'>;
}

function startOfMonth(now: number): Date {
  const date = new Date(now);
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1));
}

export function resolveRange(input: { since?: string | undefined; from?: string | undefined; to?: string | undefined }, defaultFrom: (now: number) => Date, now = Date.now()): Range {
  const to = input.to === undefined ? new Date(now) : new Date(input.to);
  const from = input.from !== undefined ? new Date(input.from) : input.since !== undefined ? new Date(to.getTime() - spanMs(input.since)) : defaultFrom(to.getTime());
  if (!(from.getTime() < to.getTime())) {
    throw new ExaiError('invalid_argument', `The range is empty: from ${from.toISOString()} is not before to ${to.toISOString()}. Give an earlier from or a later to.`);
  }
  if (to.getTime() - from.getTime() > 731 * dayMs) {
    throw new ExaiError('invalid_argument', 'The range is longer than two years, the longest kept; shorten it.');
  }
  return { from, to };
}

/** Hourly buckets up to three days (precise edges), daily beyond (fewer rows to merge). */
function resolutionFor(range: Range, asked?: Resolution): Resolution {
  return asked ?? (range.to.getTime() - range.from.getTime() <= 3 * dayMs ? 'hour' : 'day');
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

function readable(row: StatsRow): StatsRow {
  return {
    ...row,
    error_rate: round(row.error_rate, 4),
    avg_ms: round(row.avg_ms, 1),
    p50_ms: round(row.p50_ms, 1),
    p95_ms: round(row.p95_ms, 1),
    p99_ms: round(row.p99_ms, 1),
    max_ms: round(row.max_ms, 1),
    avg_ttft_ms: row.avg_ttft_ms === null ? null : round(row.avg_ttft_ms, 1),
    cost_usd: round(row.cost_usd, 6),
  };
}

const sortKey = {
  p95: (row: StatsRow) => row.p95_ms,
  p99: (row: StatsRow) => row.p99_ms,
  error_rate: (row: StatsRow) => row.error_rate,
  cost: (row: StatsRow) => row.cost_usd,
  calls: (row: StatsRow) => row.call_count,
} as const;

export async function performanceReport(scope: StatsScope, input: PerformanceInput, now = Date.now()): Promise<PerformanceReport> {
  const view = input.view ?? 'summary';
  if (input.sort !== undefined && view !== 'bottlenecks') {
    throw new ExaiError('invalid_argument', `sort orders the bottlenecks view only (view: "bottlenecks", sort: "${input.sort}"); ${view} has its own order.`);
  }
  const asked = resolveRange(input, (at) => new Date(at - dayMs), now);
  const resolution = resolutionFor(asked, input.bucket);
  // Answers cover whole buckets: the range reported is the one counted.
  const range = alignRange(asked.from, asked.to, resolution);
  if (resolution === 'hour' && range.from.getTime() < startOfDay(new Date(now)).getTime() - hourlyRetentionDays * dayMs) {
    throw new ExaiError(
      'invalid_argument',
      `Hourly buckets are kept ${hourlyRetentionDays} days, and this range starts ${range.from.toISOString()}. Use bucket "day", or a range within the last ${hourlyRetentionDays} days.`,
    );
  }
  const defaults: Record<typeof view, GroupKey[]> = {
    summary: ['tool', 'model', 'provider'],
    trend: ['model', 'provider'],
    compare: ['model', 'provider'],
    bottlenecks: ['tool', 'model', 'provider'],
  };
  const filter = {
    kind: input.kind ?? 'provider',
    ...(input.tool === undefined ? {} : { tool: input.tool }),
    ...(input.model === undefined ? {} : { model: input.model }),
    ...(input.provider === undefined ? {} : { provider: input.provider }),
  };
  let rows = await queryStats(scope, {
    ...range,
    resolution,
    bucketed: view === 'trend',
    groupBy: input.group_by ?? defaults[view],
    filter,
  });
  if (view === 'bottlenecks') {
    const key = sortKey[input.sort ?? 'p95'];
    rows = rows.sort((a, b) => key(b) - key(a));
  }
  if (view === 'compare') rows = rows.sort((a, b) => a.p95_ms - b.p95_ms);
  const limit = input.limit ?? (view === 'bottlenecks' ? 10 : view === 'trend' ? 1000 : 50);
  // A trend runs oldest first; when cut, the latest buckets are the ones kept.
  const kept = view === 'trend' ? rows.slice(Math.max(0, rows.length - limit)) : rows.slice(0, limit);
  return { view, from: range.from.toISOString(), to: range.to.toISOString(), resolution, rows: kept.map(readable), truncated: rows.length > limit };
}

export async function usageReport(scope: StatsScope, input: UsageInput, now = Date.now()): Promise<UsageReport> {
  // Up to `to` (exclusive): ending at midnight on the 1st means the month before.
  const asked = resolveRange(input, (at) => startOfMonth(at - 1), now);
  const groupBy = input.group_by ?? ['model', 'provider'];
  const byDay = groupBy.includes('day');
  const range = alignRange(asked.from, asked.to, byDay ? 'day' : resolutionFor(asked));
  const rows = await queryStats(scope, {
    ...range,
    resolution: byDay ? 'day' : resolutionFor(asked),
    bucketed: byDay,
    groupBy: groupBy.filter((key): key is Exclude<typeof key, 'day'> => key !== 'day'),
    filter: {
      kind: 'provider',
      ...(input.model === undefined ? {} : { model: input.model }),
      ...(input.provider === undefined ? {} : { provider: input.provider }),
    },
  });
  const usage = rows.map(({ bucket, call_count, error_count, input_tokens, output_tokens, cost_usd, ...rest }): UsageRow => {
    const keys = Object.fromEntries(Object.entries(rest).filter(([key]) => (groupBy as string[]).includes(key)));
    return {
      ...(bucket === undefined ? {} : { day: bucket.slice(0, 10) }),
      ...keys,
      call_count,
      error_count,
      input_tokens,
      output_tokens,
      cost_usd: round(cost_usd, 6),
    };
  });
  const totals = usage.reduce(
    (sum, row) => ({
      call_count: sum.call_count + row.call_count,
      error_count: sum.error_count + row.error_count,
      input_tokens: sum.input_tokens + row.input_tokens,
      output_tokens: sum.output_tokens + row.output_tokens,
      cost_usd: round(sum.cost_usd + row.cost_usd, 6),
    }),
    { call_count: 0, error_count: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0 },
  );
  if (!byDay) usage.sort((a, b) => b.cost_usd - a.cost_usd || b.call_count - a.call_count);
  const limit = input.limit ?? 1000;
  const kept = byDay ? usage.slice(Math.max(0, usage.length - limit)) : usage.slice(0, limit);
  return { from: range.from.toISOString(), to: range.to.toISOString(), rows: kept, truncated: usage.length > limit, totals };
}
