/**
 * Alert rules, from EXAI_ALERT_RULES (a JSON array). Each rule watches one
 * figure of the calls in a trailing window, for example
 * `{"name":"kimi-slow","metric":"p95_ms","above":20000,"window":"15m","model":"kimi-k2-0905-preview"}`
 * or `{"name":"errors","metric":"error_rate","above":0.05}`.
 */
import { z } from 'zod';
import { spanMs } from './report-input.js';

export const alertMetrics = ['p50_ms', 'p95_ms', 'p99_ms', 'avg_ms', 'error_rate', 'cost_usd', 'call_count'] as const;
export type AlertMetric = (typeof alertMetrics)[number];

const window = z
  .string()
  .refine((text) => /^\d{1,5}(m|h)$/.test(text) && spanMs(text) >= 60_000 && spanMs(text) <= 86_400_000, 'a window from 1m to 24h, such as 5m, 15m or 1h');

export const alertRule = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,99}$/, 'lower-case letters, digits, . _ - (up to 100)'),
    metric: z.enum(alertMetrics),
    above: z.number().min(0),
    window: window.default('15m'),
    /** Fewer calls than this in the window never fire a latency or error-rate rule: too few to judge. */
    min_calls: z.number().int().min(1).max(1_000_000).default(10),
    kind: z.enum(['provider', 'tool']).default('provider'),
    tool: z.string().min(1).max(100).optional(),
    model: z.string().min(1).max(200).optional(),
    provider: z.string().min(1).max(100).optional(),
  })
  .strict()
  .refine((rule) => rule.metric !== 'error_rate' || rule.above < 1, { message: 'an error_rate is a fraction from 0 to 1: above must be below 1 (0.05 means 5%)', path: ['above'] });
export type AlertRule = z.infer<typeof alertRule>;

export const alertRules = z
  .array(alertRule)
  .max(100)
  .superRefine((rules, ctx) => {
    const seen = new Set<string>();
    for (const rule of rules) {
      if (seen.has(rule.name)) ctx.addIssue({ code: 'custom', message: `rule name ${JSON.stringify(rule.name)} is used twice` });
      seen.add(rule.name);
    }
  });

/** Parses the variable's text; the issues name the rule and field that are wrong. */
export const alertRulesFromText = z.string().transform((text, ctx) => {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a JSON array of rules' });
    return z.NEVER;
  }
  const result = alertRules.safeParse(json);
  if (!result.success) {
    for (const issue of result.error.issues) {
      ctx.addIssue({ code: 'custom', message: `${issue.path.length > 0 ? `at ${issue.path.join('.')}: ` : ''}${issue.message}` });
    }
    return z.NEVER;
  }
  return result.data;
});
