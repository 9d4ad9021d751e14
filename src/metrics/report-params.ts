/**
 * Report inputs from text parameters: `exai stats` options and the query
 * string of `/api/v1/metrics/…`. Values arrive as strings (a list as a comma
 * list, or repeated in a query string); they are turned into the shapes of
 * report-input.ts and checked there, and a refusal names the parameter as that
 * surface spells it (`--group-by`, `group_by`) with the values it accepts.
 */
import { z } from 'zod';
import { ExaiError } from '../errors.js';
import { groupKeys } from './stats-query.js';
import { bottleneckSorts, performanceInput, performanceViews, usageGroupKeys, usageInput, type PerformanceInput, type UsageInput } from './report-input.js';

/** How a surface names its parameters: `cli` as `--group-by`, `query` as `group_by`. */
export type ParamStyle = 'cli' | 'query';

/** Raw values by snake_case name; a query string may repeat a name (an array). */
export type RawParams = Record<string, string | string[] | undefined>;

const performanceParams = ['view', 'since', 'from', 'to', 'kind', 'tool', 'model', 'provider', 'bucket', 'group_by', 'sort', 'limit'] as const;
const usageParams = ['since', 'from', 'to', 'model', 'provider', 'group_by', 'limit'] as const;

/** What each parameter accepts, completing "<name> must be …". */
function accepted(name: string, which: 'performance' | 'usage', style: ParamStyle): string {
  switch (name) {
    case 'view':
      return `one of ${performanceViews.join(', ')}`;
    case 'since':
      return `a span back from ${paramLabel('to', style)} (default now) such as 30m, 24h, 7d or 2w (m, h, d, w; at most 2 years)`;
    case 'from':
    case 'to':
      return 'an ISO 8601 time such as 2026-11-01T00:00:00Z, or a date such as 2026-11-01 (midnight UTC)';
    case 'kind':
      return 'provider or tool';
    case 'bucket':
      return 'hour or day';
    case 'group_by':
      return `a comma-separated list of ${(which === 'performance' ? groupKeys : usageGroupKeys).join(', ')}`;
    case 'sort':
      return `one of ${bottleneckSorts.join(', ')}`;
    case 'limit':
      return 'a whole number from 1 to 1000';
    default:
      return 'a name of 1 to 200 characters';
  }
}

export function paramLabel(name: string, style: ParamStyle): string {
  return style === 'cli' ? `--${name.replace(/_/g, '-')}` : name;
}

const datePattern = /^\d{4}-\d{2}-\d{2}$/;

/** A date alone means its midnight in UTC. */
export function instant(text: string): string {
  return datePattern.test(text) ? `${text}T00:00:00Z` : text;
}

function single(name: string, value: string | string[], style: ParamStyle): string {
  if (typeof value === 'string') return value;
  if (value.length === 1) return value[0]!;
  throw new ExaiError('invalid_argument', `${paramLabel(name, style)} is given ${value.length} times; give it once.`);
}

function convert(raw: RawParams, names: readonly string[], style: ParamStyle): { input: Record<string, unknown>; shown: Record<string, string> } {
  const input: Record<string, unknown> = {};
  const shown: Record<string, string> = {};
  for (const name of names) {
    const value = raw[name];
    if (value === undefined) continue;
    if (name === 'group_by') {
      const parts = (typeof value === 'string' ? [value] : value).flatMap((part) => part.split(',')).map((part) => part.trim());
      shown[name] = parts.join(',');
      // An empty entry is left for the schema to refuse; a repeated one is dropped.
      input[name] = [...new Set(parts)];
      continue;
    }
    const text = single(name, value, style);
    shown[name] = text;
    if (name === 'limit') input[name] = /^\d{1,7}$/.test(text) ? Number(text) : text;
    else if (name === 'from' || name === 'to') input[name] = instant(text);
    else input[name] = text;
  }
  return { input, shown };
}

function refusal(error: z.ZodError, input: Record<string, unknown>, shown: Record<string, string>, which: 'performance' | 'usage', style: ParamStyle): ExaiError {
  const problems = new Map<string, string>();
  for (const issue of error.issues) {
    const name = String(issue.path[0] ?? '');
    if (problems.has(name)) continue;
    const element = issue.path.length > 1 && name === 'group_by' ? (input.group_by as unknown[])[issue.path[1] as number] : undefined;
    const got = element === undefined ? shown[name] : String(element);
    problems.set(name, `${paramLabel(name, style)} must be ${accepted(name, which, style)} (got ${JSON.stringify(got ?? '')}).`);
  }
  return new ExaiError('invalid_argument', [...problems.values()].join(' '));
}

function unknownParams(raw: RawParams, names: readonly string[], style: ParamStyle): void {
  const unknown = Object.keys(raw).filter((name) => raw[name] !== undefined && !names.includes(name));
  if (unknown.length === 0) return;
  throw new ExaiError(
    'invalid_argument',
    `Unknown parameter${unknown.length > 1 ? 's' : ''} ${unknown.map((name) => paramLabel(name, style)).join(', ')}; the parameters are ${names.map((name) => paramLabel(name, style)).join(', ')}.`,
  );
}

/**
 * The performance report's input from text parameters. `fixed` holds values
 * the surface decides (a path's view); they are not parameters there.
 */
export function performanceInputFrom(raw: RawParams, style: ParamStyle, fixed: Partial<PerformanceInput> = {}): PerformanceInput {
  const names = performanceParams.filter((name) => !(name in fixed));
  unknownParams(raw, names, style);
  const { input, shown } = convert(raw, names, style);
  const parsed = performanceInput.safeParse({ ...input, ...fixed });
  if (!parsed.success) throw refusal(parsed.error, input, shown, 'performance', style);
  return parsed.data;
}

/** The usage report's input from text parameters. */
export function usageInputFrom(raw: RawParams, style: ParamStyle): UsageInput {
  unknownParams(raw, usageParams, style);
  const { input, shown } = convert(raw, usageParams, style);
  const parsed = usageInput.safeParse(input);
  if (!parsed.success) throw refusal(parsed.error, input, shown, 'usage', style);
  return parsed.data;
}
