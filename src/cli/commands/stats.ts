/**
 * `exai stats …`: latency, errors, tokens and cost of model and tool calls, as
 * the operator sees them (everyone's calls; `--user` for one user's), and the
 * alert events. Runs the `stats.*` administration operations, so it works with
 * the server stopped or running, on the embedded database or PostgreSQL.
 */
import { z } from 'zod';
import { Option, type Command } from 'commander';
import { ExaiError } from '../../errors.js';
import type { AlertEvent } from '../../metrics/alert-events.js';
import { groupKeys, type StatsRow } from '../../metrics/stats-query.js';
import { bottleneckSorts, performanceViews, usageGroupKeys, type PerformanceInput } from '../../metrics/report-input.js';
import { instant, performanceInputFrom, usageInputFrom, type RawParams } from '../../metrics/report-params.js';
import type { PerformanceReport, UsageReport, UsageRow } from '../../metrics/reports.js';
import { runAdmin } from '../data-access.js';
import type { CliContext } from '../context.js';
import { printData, table } from '../output.js';
import { limitOption } from '../options.js';
import { cliActor } from './admin-actor.js';

interface RangeOptions {
  since?: string;
  from?: string;
  to?: string;
  model?: string;
  provider?: string;
  groupBy?: string;
  limit?: string;
  user?: string;
  json?: boolean;
}

interface PerformanceOptions extends RangeOptions {
  kind?: string;
  tool?: string;
  bucket?: string;
  sort?: string;
}

const text = (value: unknown) => (value === null || value === undefined || value === '' ? '-' : String(value));
const count = (value: number) => value.toLocaleString('en');
const ms = (value: number) => value.toLocaleString('en', { maximumFractionDigits: 1 });
const usd = (value: number) => `$${value.toFixed(4)}`;
const percent = (value: number) => `${(value * 100).toFixed(1)}%`;

/** `2026-11-01 13:00` for an hour, `2026-11-01` for a day. */
function bucketText(iso: string, resolution: string): string {
  return resolution === 'day' ? iso.slice(0, 10) : `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;
}

/** The columns that split these rows, in a fixed order. */
function keyColumns<T extends object>(rows: T[], keys: readonly string[]): string[] {
  const first = rows[0];
  return first === undefined ? [] : keys.filter((key) => Object.hasOwn(first, key));
}

function performanceText(report: PerformanceReport, input: PerformanceInput): string {
  const kind = input.kind ?? 'provider';
  const head = `${report.view} of ${kind} calls from ${report.from} to ${report.to} (${report.resolution} buckets)`;
  if (report.rows.length === 0) {
    const hint = kind === 'provider' ? ' Tool calls that reached no model are counted with --kind tool.' : '';
    return `No ${kind} calls recorded from ${report.from} to ${report.to}.${hint}`;
  }
  const columns = keyColumns(report.rows, groupKeys);
  const bucketed = report.rows[0]!.bucket !== undefined;
  const headers = [...(bucketed ? ['bucket'] : []), ...columns, 'calls', 'errors', 'error %', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'tokens in', 'tokens out', 'cost'];
  const rows = report.rows.map((row: StatsRow) => [
    ...(bucketed ? [bucketText(row.bucket!, report.resolution)] : []),
    ...columns.map((column) => text(row[column as keyof StatsRow])),
    count(row.call_count),
    count(row.error_count),
    percent(row.error_rate),
    ms(row.p50_ms),
    ms(row.p95_ms),
    ms(row.p99_ms),
    ms(row.max_ms),
    count(row.input_tokens),
    count(row.output_tokens),
    usd(row.cost_usd),
  ]);
  return `${head}\n\n${table(headers, rows)}${cutNote(report.truncated, report.rows.length)}`;
}

/** An ISO 8601 time or a bare date (midnight UTC), checked here so the message names the option. */
function checkedInstant(option: string, text: string): string {
  const value = instant(text);
  if (!z.iso.datetime({ offset: true }).safeParse(value).success) {
    throw new ExaiError('invalid_argument', `${option} must be an ISO 8601 time such as 2026-11-01T00:00:00Z or a date such as 2026-11-01 (got ${JSON.stringify(text)}).`);
  }
  return value;
}

function cutNote(truncated: boolean, shown: number): string {
  return truncated ? `\n\nThe first ${shown} rows only (--limit); more matched.` : '';
}

function usageText(report: UsageReport): string {
  const { totals } = report;
  const total = `Total: ${count(totals.call_count)} model calls, ${count(totals.error_count)} errors, ${count(totals.input_tokens)} tokens in, ${count(totals.output_tokens)} out, ${usd(totals.cost_usd)}.`;
  const head = `Usage from ${report.from} to ${report.to}`;
  if (report.rows.length === 0) return `No model calls recorded from ${report.from} to ${report.to}.`;
  const columns = keyColumns(report.rows, usageGroupKeys);
  const headers = [...columns, 'calls', 'errors', 'tokens in', 'tokens out', 'cost'];
  const rows = report.rows.map((row: UsageRow) => [
    ...columns.map((column) => text(row[column as keyof UsageRow])),
    count(row.call_count),
    count(row.error_count),
    count(row.input_tokens),
    count(row.output_tokens),
    usd(row.cost_usd),
  ]);
  return `${head}\n\n${table(headers, rows)}${cutNote(report.truncated, report.rows.length)}\n\n${total}`;
}

function alertText(events: AlertEvent[], rule: string | undefined, rules: number): string {
  if (events.length === 0) {
    if (rule !== undefined) return `No alert events for rule ${JSON.stringify(rule)}.`;
    return rules === 0 ? 'No alert events: no alert rules are configured (EXAI_ALERT_RULES).' : rules === 1 ? 'No alert events: the rule in EXAI_ALERT_RULES has not fired.' : `No alert events: none of the ${rules} rules in EXAI_ALERT_RULES has fired.`;
  }
  return table(
    ['at', 'rule', 'state', 'observed', 'threshold', 'id'],
    events.map((event) => [event.at, event.rule, event.state, event.observed === null ? '-' : ms(event.observed), ms(event.threshold), String(event.id)]),
  );
}

/** The options every report shares, as text; report-params.ts checks them and names a bad one. */
function rangeParams(options: RangeOptions): RawParams {
  return { since: options.since, from: options.from, to: options.to, model: options.model, provider: options.provider, group_by: options.groupBy, limit: options.limit };
}

function addRangeOptions(command: Command, groups: readonly string[], defaultGroups: string, defaultRange: string): Command {
  return command
    .option('--since <span>', `how far back from --to (default now): 30m, 24h, 7d, 2w (default ${defaultRange})`)
    .option('--from <time>', 'start: an ISO 8601 time or a date such as 2026-11-01 (overrides --since)')
    .option('--to <time>', 'end: an ISO 8601 time or a date (default now)')
    .option('--model <name>', 'only this model')
    .option('--provider <name>', 'only this provider')
    .option('--group-by <list>', `comma-separated: ${groups.join(', ')} (default ${defaultGroups})`)
    .option('--limit <n>', 'rows at most, 1-1000')
    .option('--user <handle>', 'only this user\u2019s calls (default: everyone\u2019s)')
    .option('--json', 'print the report as JSON');
}

export function registerStats(program: Command, context: CliContext): void {
  const stats = program
    .command('stats')
    .description('latency, errors, tokens and cost of model and tool calls (everyone\u2019s), and alerts')
    .addHelpText('after', '\nExamples:\n  exai stats --since 7d\n  exai stats bottlenecks --sort error_rate --kind tool\n  exai stats trend --model glm-4.6 --bucket day --since 2w\n  exai stats usage --group-by model,day --user alice');

  const performanceDefaults: Record<(typeof performanceViews)[number], { description: string; groups: string }> = {
    summary: { description: 'per tool, model and provider (the default)', groups: 'tool,model,provider' },
    trend: { description: 'per hour or day', groups: 'model,provider' },
    compare: { description: 'models side by side, fastest p95 first (for one tool with --tool)', groups: 'model,provider' },
    bottlenecks: { description: 'the worst first: slowest, failing or costliest', groups: 'tool,model,provider' },
  };
  for (const view of performanceViews) {
    const { description, groups } = performanceDefaults[view];
    const command = stats.command(view, view === 'summary' ? { isDefault: true } : {}).description(description);
    addRangeOptions(command, groupKeys, groups, '24h')
      .option('--kind <kind>', 'provider: each model call (default); tool: each tool call end to end')
      .option('--tool <name>', 'only this tool')
      .option('--bucket <size>', `hour or day (default hour up to 3 days, else day)`);
    // Only bottlenecks are sorted; elsewhere --sort is accepted to say so rather than "unknown option".
    const sort = new Option('--sort <what>', `what "worst" means: ${bottleneckSorts.join(', ')} (default p95)`);
    command.addOption(view === 'bottlenecks' ? sort : sort.hideHelp());
    // The default view takes what `exai stats <word>` passes when <word> is no view, to name it.
    if (view === 'summary') command.argument('[view]', 'summary (the default), trend, compare, bottlenecks, usage, alerts or rebuild');
    command.action(async (...args: unknown[]) => {
      const options = (view === 'summary' ? args[1] : args[0]) as PerformanceOptions;
      const stray = view === 'summary' ? (args[0] as string | undefined) : undefined;
      if (stray !== undefined) {
        throw new ExaiError('invalid_argument', `${JSON.stringify(stray)} is not a view of exai stats: use summary, trend, compare, bottlenecks, usage, alerts or rebuild.`);
      }
      if (options.sort !== undefined && view !== 'bottlenecks') {
        throw new ExaiError('invalid_argument', `--sort orders the bottlenecks view only, such as \`exai stats bottlenecks --sort ${options.sort}\`; ${view} has its own order.`);
      }
      const input = performanceInputFrom(
        { ...rangeParams(options), kind: options.kind, tool: options.tool, bucket: options.bucket, sort: options.sort },
        'cli',
        { view },
      );
      const config = context.config();
      const report = await runAdmin(config, context.logger(config, 'stats'), 'stats.performance', { ...input, ...(options.user !== undefined && { user: options.user }) }, cliActor());
      printData(report, options, () => performanceText(report, input));
    });
  }

  addRangeOptions(stats.command('usage').description('model calls, tokens and cost; by default this month, per model and provider'), usageGroupKeys, 'model,provider', 'the current month').action(
    async (options: RangeOptions) => {
      const input = usageInputFrom(rangeParams(options), 'cli');
      const config = context.config();
      const report = await runAdmin(config, context.logger(config, 'stats'), 'stats.usage', { ...input, ...(options.user !== undefined && { user: options.user }) }, cliActor());
      printData(report, options, () => usageText(report));
    },
  );

  stats
    .command('rebuild')
    .description('roll a window up again (hours from raw calls, kept 7 days; days from hourly rows, kept 90 days)')
    .requiredOption('--from <time>', 'start: an ISO 8601 time or a date such as 2026-11-01')
    .option('--to <time>', 'end (default now)')
    .option('--json', 'print JSON')
    .action(async (options: { from: string; to?: string; json?: boolean }) => {
      const config = context.config();
      const input = { from: checkedInstant('--from', options.from), ...(options.to !== undefined && { to: checkedInstant('--to', options.to) }) };
      const result = await runAdmin(config, context.logger(config, 'stats'), 'stats.rebuild', input, cliActor());
      const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
      printData(result, options, () => `Rebuilt ${result.from} to ${result.to}: ${plural(result.hours_rebuilt, 'hour')} and ${plural(result.days_rebuilt, 'day')} rolled up again.`);
    });

  stats
    .command('alerts')
    .description('alert events, newest first: when a rule started firing and when it resolved')
    .option('--rule <name>', 'only this rule')
    .option('--limit <n>', 'how many (1-10000, default 50)', limitOption(10_000))
    .option('--json', 'print JSON')
    .action(async (options: { rule?: string; limit?: number; json?: boolean }) => {
      const config = context.config();
      const input = { limit: options.limit ?? 50, ...(options.rule !== undefined && { rule: options.rule }) };
      const events = await runAdmin(config, context.logger(config, 'stats'), 'stats.alerts', input, cliActor());
      printData(events, options, () => alertText(events, options.rule, config.metrics.alertRules.length));
    });
}
