/** Tools that answer from the performance and usage metrics. */
import { hasScope } from '../auth/principal.js';
import { performanceInputShape, usageInputShape } from '../metrics/report-input.js';
import { performanceReport, usageReport, type PerformanceReport, type UsageReport } from '../metrics/reports.js';
import type { StatsScope } from '../metrics/stats-query.js';
import { defineTool, type ToolContext } from './types.js';

/** One's own numbers; everyone's with the admin scope. */
function scopeOf(context: ToolContext): StatsScope {
  return { db: context.services.db, userId: context.userId, everyone: hasScope(context.principal, 'admin') };
}

const ms = (value: number) => `${value.toLocaleString('en', { maximumFractionDigits: 1 })} ms`;
const usd = (value: number) => `$${value.toFixed(4)}`;

function performanceText(report: PerformanceReport): string {
  if (report.rows.length === 0) return `No calls recorded from ${report.from} to ${report.to}.`;
  const lines = report.rows.map((row) => {
    const what = [row.bucket, row.tool, row.model, row.provider].filter((part) => part !== undefined && part !== null).join(' · ');
    return `${what || 'all'}: ${row.call_count} calls, ${row.error_count} errors, p50 ${ms(row.p50_ms)}, p95 ${ms(row.p95_ms)}, p99 ${ms(row.p99_ms)}, ${usd(row.cost_usd)}`;
  });
  return `${report.view} from ${report.from} to ${report.to} (${report.resolution} buckets):\n${lines.join('\n')}`;
}

function usageText(report: UsageReport): string {
  const { totals } = report;
  const head = `From ${report.from} to ${report.to}: ${totals.call_count} model calls, ${totals.input_tokens} tokens in, ${totals.output_tokens} out, ${usd(totals.cost_usd)}.`;
  const lines = report.rows.map((row) => {
    const what = [row.day, row.model, row.provider, row.tool, row.user_id, row.api_key_id].filter((part) => part !== undefined && part !== null).join(' · ');
    return `${what || 'all'}: ${row.call_count} calls, ${row.input_tokens}/${row.output_tokens} tokens, ${usd(row.cost_usd)}`;
  });
  return [head, ...lines].join('\n');
}

export const performanceStatsTool = defineTool({
  name: 'performance_stats',
  title: 'Performance of models and tools',
  description:
    'Latency percentiles, error rates, tokens and cost of model and tool calls: a summary, a trend over time, models compared, or the bottlenecks. Your own calls (everyone\'s with the admin scope).',
  category: 'fast',
  inputSchema: performanceInputShape,
  annotations: { readOnlyHint: true },
  scopes: ['metrics:read'],
  async run(args, context) {
    const report = await performanceReport(scopeOf(context), args);
    return { content: [{ type: 'text', text: performanceText(report) }], structuredContent: { ...report } };
  },
});

export const usageStatsTool = defineTool({
  name: 'usage_stats',
  title: 'Token and cost usage',
  description: 'Model calls, tokens and cost per model, provider, tool, key or day; by default the current month. Your own (everyone\'s with the admin scope).',
  category: 'fast',
  inputSchema: usageInputShape,
  annotations: { readOnlyHint: true },
  scopes: ['metrics:read'],
  async run(args, context) {
    const report = await usageReport(scopeOf(context), args);
    return { content: [{ type: 'text', text: usageText(report) }], structuredContent: { ...report } };
  },
});
