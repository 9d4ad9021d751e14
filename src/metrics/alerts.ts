/**
 * Evaluates the alert rules over the raw calls of each rule's window (exact
 * figures: raw calls are kept 7 days, windows are at most a day). A rule that
 * starts firing or resolves is logged and recorded in `exai.alert_events`;
 * delivery elsewhere (webhooks) builds on those rows.
 */
import type { Database } from '../db/types.js';
import { asService } from '../db/session.js';
import type { Logger } from '../logger.js';
import type { AlertMetric, AlertRule } from './alert-rules.js';
import { spanMs } from './report-input.js';

export interface AlertState {
  rule: string;
  firing: boolean;
  /** The figure in the window; null when there were too few calls to judge. */
  observed: number | null;
  calls: number;
  /** The rule started firing or resolved in this evaluation. */
  changed: boolean;
}

interface WindowFigures {
  calls: number;
  errors: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  avg: number | null;
  cost: number;
}

const windowSql = `
  SELECT count(*)::int AS calls,
         (count(*) FILTER (WHERE outcome <> 'ok'))::int AS errors,
         percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50,
         percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95,
         percentile_disc(0.99) WITHIN GROUP (ORDER BY duration_ms) AS p99,
         avg(duration_ms) AS avg,
         coalesce(sum(cost_usd), 0) AS cost
    FROM exai.performance_metrics
   WHERE at >= $1 AND at < $2 AND kind = $3
     AND ($4::text IS NULL OR tool = $4) AND ($5::text IS NULL OR model = $5) AND ($6::text IS NULL OR provider = $6)`;

function observedValue(metric: AlertMetric, figures: WindowFigures): number | null {
  switch (metric) {
    case 'p50_ms':
      return figures.p50;
    case 'p95_ms':
      return figures.p95;
    case 'p99_ms':
      return figures.p99;
    case 'avg_ms':
      return figures.avg;
    case 'error_rate':
      return figures.calls === 0 ? null : figures.errors / figures.calls;
    case 'cost_usd':
      return figures.cost;
    case 'call_count':
      return figures.calls;
  }
}

/** Totals (cost, call count) judge any window; per-call figures need `min_calls` calls. */
function judged(rule: AlertRule, figures: WindowFigures): number | null {
  const totals = rule.metric === 'cost_usd' || rule.metric === 'call_count';
  if (!totals && figures.calls < rule.min_calls) return null;
  return observedValue(rule.metric, figures);
}

export async function evaluateAlerts(db: Database, rules: readonly AlertRule[], logger: Logger, now = Date.now()): Promise<AlertState[]> {
  const states: AlertState[] = [];
  for (const rule of rules) {
    const state = await asService(db, async (tx) => {
      const figures = await tx.query<Record<string, unknown>>(windowSql, [
        new Date(now - spanMs(rule.window)),
        new Date(now),
        rule.kind,
        rule.tool ?? null,
        rule.model ?? null,
        rule.provider ?? null,
      ]);
      const row = figures.rows[0] ?? {};
      const num = (value: unknown) => (value === null || value === undefined ? null : Number(value));
      const window: WindowFigures = {
        calls: Number(row.calls ?? 0),
        errors: Number(row.errors ?? 0),
        p50: num(row.p50),
        p95: num(row.p95),
        p99: num(row.p99),
        avg: num(row.avg),
        cost: Number(row.cost ?? 0),
      };
      const observed = judged(rule, window);
      const firing = observed !== null && observed > rule.above;
      // Serialises evaluations of one rule, so two instances never both record a change.
      await tx.query("SELECT pg_advisory_xact_lock(hashtextextended('exai.alert.' || $1, 0))", [rule.name]);
      const last = await tx.query<{ state: string }>('SELECT state FROM exai.alert_events WHERE rule = $1 ORDER BY at DESC, id DESC LIMIT 1', [rule.name]);
      const wasFiring = last.rows[0]?.state === 'firing';
      const changed = firing !== wasFiring;
      if (changed) {
        await tx.query(
          'INSERT INTO exai.alert_events (rule, state, observed, threshold, details) VALUES ($1, $2, $3, $4, $5::jsonb)',
          [
            rule.name,
            firing ? 'firing' : 'resolved',
            observed,
            rule.above,
            JSON.stringify({ metric: rule.metric, window: rule.window, calls: window.calls, kind: rule.kind, tool: rule.tool ?? null, model: rule.model ?? null, provider: rule.provider ?? null }),
          ],
        );
      }
      return { rule: rule.name, firing, observed, calls: window.calls, changed };
    });
    if (state.changed) {
      const fields = { alert: rule.name, metric: rule.metric, observed: state.observed, threshold: rule.above, window: rule.window, calls: state.calls };
      if (state.firing) logger.warn(fields, `alert ${rule.name} is firing: ${rule.metric} ${state.observed} > ${rule.above} over ${rule.window}`);
      else logger.info(fields, `alert ${rule.name} resolved`);
    }
    states.push(state);
  }
  await resolveRemovedRules(db, rules, logger);
  return states;
}

/** A rule taken out of the configuration while firing would otherwise stay firing forever. */
async function resolveRemovedRules(db: Database, rules: readonly AlertRule[], logger: Logger): Promise<void> {
  const resolved = await asService(db, async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock(hashtextextended('exai.alert.removed', 0))");
    const inserted = await tx.query<{ rule: string }>(
      `INSERT INTO exai.alert_events (rule, state, observed, threshold, details)
       SELECT latest.rule, 'resolved', NULL, latest.threshold, '{"reason":"the rule is no longer in EXAI_ALERT_RULES"}'::jsonb
         FROM (SELECT DISTINCT ON (rule) rule, state, threshold FROM exai.alert_events ORDER BY rule, at DESC, id DESC) AS latest
        WHERE latest.state = 'firing' AND NOT (latest.rule = ANY($1::text[]))
       RETURNING rule`,
      [rules.map((rule) => rule.name)],
    );
    return inserted.rows.map((row) => row.rule);
  });
  for (const rule of resolved) logger.info({ alert: rule }, `alert ${rule} resolved: the rule is no longer configured`);
}
