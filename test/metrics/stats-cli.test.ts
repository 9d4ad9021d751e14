/**
 * `exai stats` as an operator meets it: the real `exai` binary in child
 * processes against a database holding recorded calls of two users — some
 * already rolled up into hourly and daily rows, some still raw — so one answer
 * merges both. Counts, tokens and costs must be exact, percentiles within 1%
 * of the exact nearest-rank values; `--user` narrows to one user; bad options
 * are refused with a message naming them and the values allowed.
 *
 * Each command is a new Node.js process (about a second), so the suite runs
 * on one backend: PostgreSQL when configured (the commands open it
 * themselves), else the embedded database owned by a running `exai serve`
 * (the commands go through its internal API). The REST suite covers both
 * backends.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createUser } from '../../src/users/users.js';
import { embeddedDataDir } from '../../src/db/open.js';
import { openPglite } from '../../src/db/pglite.js';
import type { Database } from '../../src/db/types.js';
import type { MetricEvent } from '../../src/metrics/event.js';
import { DatabaseMetricsSink } from '../../src/metrics/metrics-store.js';
import type { PerformanceReport, UsageReport } from '../../src/metrics/reports.js';
import { rollUpPending } from '../../src/metrics/rollups.js';
import { dayMs, hourMs, startOfDay } from '../../src/metrics/buckets.js';
import type { AlertEvent } from '../../src/metrics/alert-events.js';
import { storageBackends, type TestDatabase } from '../support/backends.js';
import { suiteCleanups } from '../support/cleanups.js';
import { preparedHome, runCli, startServe, type CliResult } from '../support/cli.js';
import { exactQuantile, expectWithin1Percent, makeEvents, testModels as models } from '../support/metric-events.js';


/** Every model's row must hold exactly these events' counts and cost, and their percentiles within 1%. */
function expectRowsMatch(report: PerformanceReport, events: MetricEvent[], label: string): void {
  const byModel = new Map<string, MetricEvent[]>();
  for (const event of events) byModel.set(event.model!, [...(byModel.get(event.model!) ?? []), event]);
  expect(report.rows.map((row) => row.model).sort(), label).toEqual([...byModel.keys()].sort());
  for (const [model, mine] of byModel) {
    const row = report.rows.find((candidate) => candidate.model === model)!;
    const durations = mine.map((event) => event.durationMs);
    expect(row.call_count, `${label}: ${model} calls`).toBe(mine.length);
    expect(row.error_count, `${label}: ${model} errors`).toBe(mine.filter((event) => event.outcome !== 'ok').length);
    expect(row.input_tokens, `${label}: ${model} input`).toBe(mine.reduce((sum, event) => sum + event.inputTokens, 0));
    expect(row.output_tokens, `${label}: ${model} output`).toBe(mine.reduce((sum, event) => sum + event.outputTokens, 0));
    expect(row.cost_usd, `${label}: ${model} cost`).toBeCloseTo(mine.reduce((sum, event) => sum + (event.costUsd ?? 0), 0), 5);
    expectWithin1Percent(row.p50_ms, exactQuantile(durations, 0.5), `${label}: ${model} p50`);
    expectWithin1Percent(row.p95_ms, exactQuantile(durations, 0.95), `${label}: ${model} p95`);
    expectWithin1Percent(row.p99_ms, exactQuantile(durations, 0.99), `${label}: ${model} p99`);
  }
}

function succeeded(result: CliResult, what: string): string {
  expect(result.code, `${what}: ${result.stderr}`).toBe(0);
  return result.stdout;
}

/** A usage error: exit 2, the message on stderr, nothing on stdout, no stack trace. */
function refused(result: CliResult, message: RegExp): void {
  expect(result.code, result.stderr).toBe(2);
  expect(result.stderr).toMatch(message);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  expect(result.stdout).toBe('');
}

const now = Date.now();
const today = startOfDay(new Date(now)).getTime();
// Alice: three hours two days ago, rolled up before the commands run. Bob: the last full hour, still raw.
const aliceHours = [today - 2 * dayMs + hourMs, today - 2 * dayMs + 2 * hourMs, today - 2 * dayMs + 3 * hourMs];
const bobHour = Math.floor(now / hourMs) * hourMs - hourMs;

const postgres = storageBackends().find((backend) => backend.kind === 'postgres');
const actor = { label: 'test', source: 'test' };

describe(`exai stats on ${postgres === undefined ? 'the embedded database' : 'PostgreSQL'}`, () => {
  const cleanups = suiteCleanups();
  let env: Record<string, string>;
  let aliceEvents: MetricEvent[];
  let bobEvents: MetricEvent[];
  let alertAt: string;
  /** The commands' results, by name. */
  const results = new Map<string, CliResult>();

  const commands: Record<string, string[]> = {
    summary: ['stats', '--since', '7d', '--group-by', 'model', '--json'],
    table: ['stats', '--since', '7d'],
    bob: ['stats', '--since', '7d', '--group-by', 'model', '--user', 'bob', '--json'],
    usage: ['stats', 'usage', '--since', '7d', '--json'],
    aliceByDay: ['stats', 'usage', '--since', '7d', '--group-by', 'model,day', '--user', 'alice', '--json'],
    alerts: ['stats', 'alerts', '--json'],
    badSince: ['stats', '--since', 'yesterday'],
    badSort: ['stats', 'bottlenecks', '--sort', 'fastest'],
    sortElsewhere: ['stats', 'summary', '--sort', 'p95'],
    badGroup: ['stats', 'usage', '--group-by', 'model,tool_name'],
    nobody: ['stats', '--user', 'nobody'],
    notAView: ['stats', 'bottleneck'],
    badRebuild: ['stats', 'rebuild', '--from', 'yesterday'],
    badJobId: ['jobs', 'retry', 'nope'],
  };

  async function seed(db: Database): Promise<void> {
    const alice = await createUser(db, 'alice', undefined, actor);
    const bob = await createUser(db, 'bob', undefined, actor);
    aliceEvents = makeEvents(alice.id, 1, 600, aliceHours);
    // Bob calls only two of the models, so a narrowed answer has fewer rows.
    bobEvents = makeEvents(bob.id, 2, 240, [bobHour], 2);
    const sink = new DatabaseMetricsSink(db);
    await sink.write(aliceEvents);
    await rollUpPending(db);
    await sink.write(bobEvents);
    const alert = await db.query<{ at: Date }>(
      `INSERT INTO exai.alert_events (rule, state, observed, threshold, details) VALUES ('kimi-slow', 'firing', 25000, 20000, '{"metric":"p95_ms"}') RETURNING at`,
    );
    alertAt = alert.rows[0]!.at.toISOString();
  }

  async function runAll(): Promise<void> {
    const names = Object.keys(commands);
    const outputs = await Promise.all(names.map((name) => runCli(commands[name]!, env, 120_000)));
    names.forEach((name, index) => results.set(name, outputs[index]!));
  }

  beforeAll(async () => {
    if (postgres !== undefined) {
      const database: TestDatabase = await postgres.createDatabase();
      cleanups.push(() => database.destroy());
      await seed(database.db);
      const home = mkdtempSync(path.join(os.tmpdir(), 'exai-test-home-'));
      cleanups.push(async () => rmSync(home, { recursive: true, force: true }));
      env = { EXAI_HOME: home, ...postgres.env(database) };
      await runAll();
    } else {
      const home = await preparedHome();
      cleanups.push(async () => rmSync(home, { recursive: true, force: true }));
      const db = await openPglite(embeddedDataDir(home));
      try {
        await seed(db);
      } finally {
        await db.close();
      }
      env = { EXAI_HOME: home };
      // One process at a time may open the embedded database: with a server owning it, every command
      // goes through the owner's API instead, and they can run side by side.
      const server = await startServe(env);
      cleanups.push(async () => {
        if (server.child.exitCode === null) await server.kill9();
      });
      await runAll();
      expect(await server.stop()).toBe(0);
    }
  }, 300_000);

  it('reports everyone\u2019s calls per model, from roll-ups and raw calls together: counts and costs exact, percentiles within 1%', () => {
    const report = JSON.parse(succeeded(results.get('summary')!, 'stats --json')) as PerformanceReport;
    expect(report.view).toBe('summary');
    expect(report.resolution).toBe('day');
    // The range counted, in whole UTC days: from the day 7 days back to the end of today.
    expect(Date.parse(report.from) % dayMs).toBe(0);
    expect(Date.parse(report.to) % dayMs).toBe(0);
    expect(Date.parse(report.to) - Date.parse(report.from)).toBe(8 * dayMs);
    expectRowsMatch(report, [...aliceEvents, ...bobEvents], 'everyone');
  });

  it('narrows to one user with --user', () => {
    const report = JSON.parse(succeeded(results.get('bob')!, 'stats --user bob')) as PerformanceReport;
    expect(report.rows).toHaveLength(2);
    expectRowsMatch(report, bobEvents, 'bob');
    const byDay = JSON.parse(succeeded(results.get('aliceByDay')!, 'stats usage --user alice')) as UsageReport;
    const aliceDay = new Date(aliceHours[0]!).toISOString().slice(0, 10);
    expect(byDay.rows.map((row) => [row.day, row.model])).toEqual(expect.arrayContaining(models.map(({ model }) => [aliceDay, model])));
    expect(byDay.rows).toHaveLength(models.length);
    expect(byDay.totals.call_count).toBe(aliceEvents.length);
  });

  it('totals usage exactly', () => {
    const report = JSON.parse(succeeded(results.get('usage')!, 'stats usage --json')) as UsageReport;
    const all = [...aliceEvents, ...bobEvents];
    expect(report.totals).toMatchObject({
      call_count: all.length,
      error_count: all.filter((event) => event.outcome !== 'ok').length,
      input_tokens: all.reduce((sum, event) => sum + event.inputTokens, 0),
      output_tokens: all.reduce((sum, event) => sum + event.outputTokens, 0),
    });
    expect(report.totals.cost_usd).toBeCloseTo(all.reduce((sum, event) => sum + (event.costUsd ?? 0), 0), 5);
    // One row per model and provider, costliest first.
    expect(report.rows.map((row) => row.model)).toHaveLength(models.length);
    expect(report.rows[0]!.cost_usd).toBeGreaterThanOrEqual(report.rows.at(-1)!.cost_usd);
  });

  it('prints a table naming every tool and model', () => {
    const text = succeeded(results.get('table')!, 'stats');
    const lines = text.trim().split('\n');
    expect(lines[0]).toMatch(/^summary of provider calls from \S+ to \S+ \(day buckets\)$/);
    expect(lines[2]).toMatch(/^tool\s+model\s+provider\s+calls\s+errors\s+error %\s+p50 ms\s+p95 ms\s+p99 ms\s+max ms\s+tokens in\s+tokens out\s+cost$/);
    // Two tools times three models.
    expect(lines.slice(4)).toHaveLength(6);
    for (const { model } of models) expect(text).toContain(model);
    expect(text).toMatch(/codereview\s+kimi-k2-0905-preview\s+kimi\s/);
  });

  it('lists alert events newest first', () => {
    const events = JSON.parse(succeeded(results.get('alerts')!, 'stats alerts')) as AlertEvent[];
    expect(events).toEqual([{ id: expect.any(Number), at: alertAt, rule: 'kimi-slow', state: 'firing', observed: 25000, threshold: 20000, details: { metric: 'p95_ms' } }]);
  });

  it('refuses bad options with exit code 2, naming the option and the values allowed', () => {
    refused(results.get('badSince')!, /^exai: --since must be a span back from --to \(default now\) such as 30m, 24h, 7d or 2w .*\(got "yesterday"\)\.\n$/);
    refused(results.get('notAView')!, /^exai: "bottleneck" is not a view of exai stats: use summary, trend, compare, bottlenecks, usage, alerts or rebuild\.\n$/);
    refused(results.get('badRebuild')!, /^exai: --from must be an ISO 8601 time such as 2026-11-01T00:00:00Z or a date such as 2026-11-01 \(got "yesterday"\)\.\n$/);
    refused(results.get('badJobId')!, /^exai: "nope" is not a job id: use the id \(a uuid\) that `exai jobs list --failed` shows\.\n$/);
    refused(results.get('badSort')!, /^exai: --sort must be one of p95, p99, error_rate, cost, calls \(got "fastest"\)\.\n$/);
    refused(results.get('sortElsewhere')!, /--sort orders the bottlenecks view only/);
    refused(results.get('badGroup')!, /--group-by must be a comma-separated list of model, provider, tool, user_id, api_key_id, day \(got "tool_name"\)/);
    const nobody = results.get('nobody')!;
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toMatch(/No user with handle "nobody"/);
  });
});
