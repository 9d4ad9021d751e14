/**
 * Recorded calls, their roll-ups and the answers built from them, on both
 * backends: counts and costs exact, percentiles within 1% of the exact ones on
 * known distributions — from raw calls, from hourly rows, from daily rows
 * merged across hours, after late arrivals, re-runs and retention.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageBackends, silentLogger, type TestDatabase } from '../support/backends.js';
import { MetricsRecorder } from '../../src/metrics/recorder.js';
import { DatabaseMetricsSink } from '../../src/metrics/metrics-store.js';
import type { MetricEvent } from '../../src/metrics/event.js';
import { markWindowStale, rollUpPending } from '../../src/metrics/rollups.js';
import { applyRetention } from '../../src/metrics/retention.js';
import { queryStats, type StatsQuery, type StatsRow, type StatsScope } from '../../src/metrics/stats-query.js';
import { dayMs, hourMs, startOfDay } from '../../src/metrics/buckets.js';
import { exactQuantile, expectWithin1Percent, makeEvents, testModels as models } from '../support/metric-events.js';

const now = Date.now();
const today = startOfDay(new Date(now)).getTime();
// Two days ago, 01:00–04:00 UTC, plus the current hour.
const hours = [today - 2 * dayMs + hourMs, today - 2 * dayMs + 2 * hourMs, today - 2 * dayMs + 3 * hourMs];
// The last full hour: yesterday's or today's.
const bobHour = Math.floor(now / hourMs) * hourMs - hourMs;

function expected(events: MetricEvent[], model: string) {
  const mine = events.filter((event) => event.model === model);
  const durations = mine.map((event) => event.durationMs);
  return {
    calls: mine.length,
    errors: mine.filter((event) => event.outcome !== 'ok').length,
    cost: mine.reduce((sum, event) => sum + (event.costUsd ?? 0), 0),
    input: mine.reduce((sum, event) => sum + event.inputTokens, 0),
    p50: exactQuantile(durations, 0.5),
    p95: exactQuantile(durations, 0.95),
    p99: exactQuantile(durations, 0.99),
  };
}

function checkPerModel(rows: StatsRow[], events: MetricEvent[], label: string): void {
  for (const { model } of models) {
    const row = rows.find((candidate) => candidate.model === model);
    const want = expected(events, model);
    expect(row, `${label}: ${model}`).toBeDefined();
    expect(row!.call_count, `${label}: ${model} calls`).toBe(want.calls);
    expect(row!.error_count, `${label}: ${model} errors`).toBe(want.errors);
    expect(row!.input_tokens).toBe(want.input);
    expect(row!.cost_usd).toBeCloseTo(want.cost, 9);
    expectWithin1Percent(row!.p50_ms, want.p50, `${label}: ${model} p50`);
    expectWithin1Percent(row!.p95_ms, want.p95, `${label}: ${model} p95`);
    expectWithin1Percent(row!.p99_ms, want.p99, `${label}: ${model} p99`);
  }
}

for (const backend of storageBackends()) {
  describe(`metrics roll-ups on ${backend.name}`, () => {
    let database: TestDatabase;
    const alice = randomUUID();
    const bob = randomUUID();
    const aliceEvents = makeEvents(alice, 1, 1_200, hours);
    const bobEvents = makeEvents(bob, 2, 90, [bobHour]);
    const scope = (): StatsScope => ({ db: database.db, userId: alice, everyone: false });
    const overDays = (resolution: 'hour' | 'day', bucketed = false): StatsQuery => ({
      from: new Date(today - 3 * dayMs),
      to: new Date(now + hourMs),
      resolution,
      bucketed,
      groupBy: ['model', 'provider'],
    });

    beforeAll(async () => {
      database = await backend.createDatabase();
      const recorder = new MetricsRecorder({ sink: new DatabaseMetricsSink(database.db), logger: silentLogger, batchSize: 700 });
      for (const event of [...aliceEvents, ...bobEvents]) recorder.record(event);
      await recorder.close();
      expect(recorder.stats()).toMatchObject({ written: aliceEvents.length + bobEvents.length, dropped: 0, buffered: 0 });
    }, 60_000);

    afterAll(async () => {
      await database?.destroy();
    });

    it('answers from raw calls before any roll-up, exactly for counts and costs, within 1% for percentiles', async () => {
      checkPerModel(await queryStats(scope(), overDays('hour')), aliceEvents, 'raw');
      checkPerModel(await queryStats(scope(), overDays('day')), aliceEvents, 'raw by day');
    });

    it('answers the same from hourly and daily roll-ups, with daily percentiles from merged sketches', async () => {
      const result = await rollUpPending(database.db);
      expect(result.hours).toBe(hours.length + 1);
      expect(result.days).toBe(new Set([...hours, bobHour].map((at) => startOfDay(new Date(at)).getTime())).size);
      const stale = await database.db.query('SELECT count(*)::int AS n FROM exai.rollup_pending');
      expect(stale.rows[0]).toEqual({ n: 0 });
      checkPerModel(await queryStats(scope(), overDays('hour')), aliceEvents, 'hourly');
      checkPerModel(await queryStats(scope(), overDays('day')), aliceEvents, 'daily');
      // One daily row per model: its stored p95 is the whole day's, not an average of the three hours'.
      const daily = await database.db.query<{ model: string; p95_ms: number }>(
        `SELECT model, p95_ms FROM exai.performance_daily WHERE bucket = $1 AND user_id = $2 AND tool = 'chat'`,
        [new Date(today - 2 * dayMs), alice],
      );
      expect(daily.rows.length).toBe(models.length);
      for (const row of daily.rows) {
        const chat = aliceEvents.filter((event) => event.model === row.model && event.tool === 'chat').map((event) => event.durationMs);
        expectWithin1Percent(row.p95_ms, exactQuantile(chat, 0.95), `stored daily p95 ${row.model}`);
      }
    });

    it('shows each user only their own numbers unless the scope is everyone', async () => {
      const mine = await queryStats(scope(), { ...overDays('day'), groupBy: ['user_id'] });
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatchObject({ user_id: alice, call_count: aliceEvents.length });
      const bobs = await queryStats({ db: database.db, userId: bob, everyone: false }, { ...overDays('day'), groupBy: ['user_id'] });
      expect(bobs).toEqual([expect.objectContaining({ user_id: bob, call_count: bobEvents.length })]);
      const all = await queryStats({ db: database.db, userId: bob, everyone: true }, { ...overDays('day'), groupBy: [] });
      expect(all[0]!.call_count).toBe(aliceEvents.length + bobEvents.length);
      // Everyone's settled days come from the everyone roll-up: per model, the same answer as over both users' calls.
      const days = await database.db.query<{ n: number }>('SELECT count(*)::int AS n FROM exai.performance_daily_all');
      expect(days.rows[0]!.n).toBeGreaterThan(0);
      checkPerModel(await queryStats({ db: database.db, userId: bob, everyone: true }, overDays('day')), [...aliceEvents, ...bobEvents], 'everyone, daily');
    });

    it('includes late calls at once and after the next roll-up, and re-running any window changes nothing', async () => {
      const late = makeEvents(alice, 3, 300, [hours[1]!]);
      await new DatabaseMetricsSink(database.db).write(late);
      const all = [...aliceEvents, ...late];
      checkPerModel(await queryStats(scope(), overDays('day')), all, 'late, before roll-up');
      await rollUpPending(database.db);
      checkPerModel(await queryStats(scope(), overDays('day')), all, 'late, rolled up');
      const before = await database.db.query('SELECT bucket, model, tool, call_count, p95_ms FROM exai.performance_daily ORDER BY 1, 2, 3');
      expect(await markWindowStale(database.db, new Date(today - 3 * dayMs), new Date(now))).toBeGreaterThan(48);
      await rollUpPending(database.db);
      await rollUpPending(database.db);
      const after = await database.db.query('SELECT bucket, model, tool, call_count, p95_ms FROM exai.performance_daily ORDER BY 1, 2, 3');
      expect(after.rows).toEqual(before.rows);
      aliceEvents.push(...late);
    });

    it('gives a trend per bucket', async () => {
      const trend = await queryStats(scope(), { ...overDays('hour', true), groupBy: [] });
      expect(trend.map((row) => row.bucket)).toEqual([...hours].map((at) => new Date(at).toISOString()));
      expect(trend.reduce((sum, row) => sum + row.call_count, 0)).toBe(aliceEvents.length);
    });

    it('drops raw partitions past 7 days but keeps answering from the roll-ups', async () => {
      const later = now + 6 * dayMs;
      // A late call into an hour whose partition retention is about to drop: rolled up before it goes.
      const lateInOldHour = makeEvents(alice, 4, 30, [hours[0]!]);
      await new DatabaseMetricsSink(database.db).write(lateInOldHour);
      aliceEvents.push(...lateInOldHour);
      const result = await applyRetention(database.db, { now: later });
      expect(result.partitionsDropped).toBeGreaterThanOrEqual(1);
      const raw = await database.db.query(`SELECT count(*)::int AS n FROM exai.performance_metrics WHERE at < $1`, [new Date(today - dayMs)]);
      expect(raw.rows[0]).toEqual({ n: 0 });
      checkPerModel(await queryStats(scope(), overDays('day')), aliceEvents, 'after retention');
      // A stale mark for a dropped hour must not wipe its roll-up.
      await markWindowStale(database.db, new Date(hours[0]!), new Date(hours[0]! + hourMs));
      await rollUpPending(database.db);
      checkPerModel(await queryStats(scope(), overDays('hour')), aliceEvents, 'after a re-run past retention');
    });
  });
}
