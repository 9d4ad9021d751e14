/**
 * The questions users ask of the metrics, validated once for every surface
 * (MCP tools, `exai stats`, REST). Field names are snake_case as on the wire.
 */
import { z } from 'zod';
import { groupKeys } from './stats-query.js';

/** `30m`, `24h`, `7d`, `2w`: a span back from the range's end (now unless `to` says otherwise). */
const spanPattern = /^(\d{1,5})(m|h|d|w)$/;
const spanUnitMs = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
/** Raw calls and roll-ups together reach two years back. */
const longestSpanMs = 731 * 86_400_000;

/** The span in milliseconds; NaN for text that is not a span. */
export function spanMs(text: string): number {
  const match = spanPattern.exec(text);
  return match === null ? Number.NaN : Number(match[1]) * spanUnitMs[match[2] as keyof typeof spanUnitMs];
}

const span = z
  .string()
  .regex(spanPattern, 'a span such as 30m, 24h, 7d or 4w')
  .refine((text) => !spanPattern.test(text) || (spanMs(text) > 0 && spanMs(text) <= longestSpanMs), 'between 1 minute and 2 years');
const instant = z.iso.datetime({ offset: true }).describe('an ISO 8601 time such as 2026-11-01T00:00:00Z');
const name = z.string().min(1).max(200);

const rangeFields = {
  since: span.optional().describe('How far back from `to` (default now): 30m, 24h, 7d, 4w. Default 24h (usage: the current month).'),
  from: instant.optional().describe('Start of the range (ISO 8601); overrides `since`.'),
  to: instant.optional().describe('End of the range (ISO 8601); default now.'),
};

const filterFields = {
  kind: z.enum(['provider', 'tool']).optional().describe('provider: each model call (default); tool: each tool call end to end.'),
  tool: name.optional(),
  model: name.optional(),
  provider: name.optional(),
};

export const performanceViews = ['summary', 'trend', 'compare', 'bottlenecks'] as const;
export const bottleneckSorts = ['p95', 'p99', 'error_rate', 'cost', 'calls'] as const;

export const performanceInputShape = {
  view: z
    .enum(performanceViews)
    .optional()
    .describe('summary: per tool, model and provider; trend: per time bucket; compare: models side by side (for one tool); bottlenecks: slowest, failing or costliest first.'),
  ...rangeFields,
  ...filterFields,
  bucket: z.enum(['hour', 'day']).optional().describe('Trend bucket; default hour up to 3 days, else day.'),
  group_by: z.array(z.enum(groupKeys)).max(7).optional().describe('Columns that split the rows; each view has a default.'),
  sort: z.enum(bottleneckSorts).optional().describe('Bottlenecks: what "worst" means (default p95).'),
  limit: z.number().int().min(1).max(1000).optional().describe('Rows at most (default 50; bottlenecks 10).'),
};
export const performanceInput = z.object(performanceInputShape).strict();
export type PerformanceInput = z.infer<typeof performanceInput>;

export const usageGroupKeys = ['model', 'provider', 'tool', 'user_id', 'api_key_id', 'day'] as const;
export const usageInputShape = {
  ...rangeFields,
  model: name.optional(),
  provider: name.optional(),
  group_by: z.array(z.enum(usageGroupKeys)).max(6).optional().describe('Default: model and provider.'),
  limit: z.number().int().min(1).max(1000).optional(),
};
export const usageInput = z.object(usageInputShape).strict();
export type UsageInput = z.infer<typeof usageInput>;
