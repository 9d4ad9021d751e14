/**
 * The metrics' background work as it runs in production: roll-ups and
 * retention as jobs of the durable runner on both backends, a roll-up that
 * dies midway and is finished after a restart, and two instances recording
 * and rolling up the same hours without counting anything twice.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { openPostgres } from '../../src/db/postgres.js';
import type { Database, Queryable } from '../../src/db/types.js';
import { startJobRunner } from '../../src/jobs/job-runner.js';
import { listJobs } from '../../src/jobs/list-jobs.js';
import type { JobRunner } from '../../src/jobs/types.js';
import { dayMs, hourMs, startOfDay } from '../../src/metrics/buckets.js';
import type { MetricEvent } from '../../src/metrics/event.js';
import { DatabaseMetricsSink } from '../../src/metrics/metrics-store.js';
import { metricsJobNames, metricsJobs } from '../../src/metrics/metrics-jobs.js';
import { MetricsRecorder } from '../../src/metrics/recorder.js';
import { rollUpPending } from '../../src/metrics/rollups.js';
import { queryStats } from '../../src/metrics/stats-query.js';
import { suiteCleanups } from '../support/cleanups.js';
import { silentLogger, storageBackends, waitFor, type StorageBackend, type TestDatabase } from '../support/backends.js';

const fast = { pollingIntervalSeconds: 0.5, cronIntervalSeconds: 1, stopTimeoutSeconds: 5 } as const;
const runners: JobRunner[] = [];

afterEach(async () => {
  await Promise.all(runners.splice(0).map((runner) => runner.stop()));
});
const cleanups = suiteCleanups();

async function newDatabase(backend: StorageBackend): Promise<TestDatabase> {
  const database = await backend.createDatabase();
  cleanups.push(() => database.destroy());
  return database;
}

function events(count: number, hourStarts: number[], userId = randomUUID()): MetricEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    kind: 'provider' as const,
    at: new Date(hourStarts[i % hourStarts.length]! + ((i * 7919) % (hourMs - 1))),
    tool: 'chat',
    model: i % 2 === 0 ? 'glm-4.6' : 'kimi-k2-0905-preview',
    provider: i % 2 === 0 ? 'glm' : 'kimi',
    paramHash: '0123456789abcdef',
    durationMs: 100 + (i % 97) * 3,
    timeToFirstTokenMs: null,
    inputTokens: 10,
    outputTokens: 2,
    costUsd: 0.001,
    outcome: 'ok' as const,
    errorClass: null,
    userId,
    apiKeyId: null,
    conversationId: null,
  }));
}

const now = Date.now();
const today = startOfDay(new Date(now)).getTime();
const hoursAgo = (n: number) => Math.floor(now / hourMs) * hourMs - n * hourMs;

async function dailyCalls(db: Database): Promise<number> {
  const rows = await db.query<{ n: string }>('SELECT coalesce(sum(call_count), 0)::text AS n FROM exai.performance_daily');
  return Number(rows.rows[0]!.n);
}

async function pendingCount(db: Database): Promise<number> {
  return (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM exai.rollup_pending')).rows[0]!.n;
}

/** The same database, but its `n`-th transaction and every later one fail: a process dying midway. */
function dyingAfter(db: Database, n: number): Database {
  let transactions = 0;
  return {
    ...db,
    kind: db.kind,
    query: (text, params) => db.query(text, params),
    exec: (script) => db.exec(script),
    ping: () => db.ping(),
    close: () => db.close(),
    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      transactions += 1;
      if (transactions >= n) return Promise.reject(new Error('the process died'));
      return db.transaction(fn);
    },
  };
}

for (const backend of storageBackends()) {
  describe(`metrics jobs on ${backend.name}`, () => {
    it('rolls up on schedule and applies retention as jobs of the runner', async () => {
      const database = await newDatabase(backend);
      const { db } = database;
      await new DatabaseMetricsSink(db).write(events(300, [hoursAgo(3), hoursAgo(2)]));
      // A day of raw calls 9 days old, written as the owner would have then: retention must drop it.
      const old = new Date(today - 9 * dayMs);
      await db.query('SELECT exai.ensure_metrics_partition($1::date)', [old.toISOString().slice(0, 10)]);
      await db.query(
        `INSERT INTO exai.performance_metrics (at, kind, param_hash, duration_ms, outcome) VALUES ($1, 'tool', '0123456789abcdef', 5, 'ok')`,
        [new Date(old.getTime() + hourMs)],
      );
      const runner = await startJobRunner({ db, logger: silentLogger, definitions: metricsJobs({ db, logger: silentLogger, alertRules: [] }), ...fast });
      runners.push(runner);
      // The roll-up's cron fires on the first check.
      await waitFor(async () => (await pendingCount(db)) === 0 && (await dailyCalls(db)) === 300, 30_000, 'the scheduled roll-up');
      expect(await runner.send(metricsJobNames.retention, {})).not.toBeNull();
      await waitFor(
        async () => (await listJobs(db, { queue: metricsJobNames.retention, state: 'completed' })).length === 1,
        30_000,
        'the retention job',
      );
      const partitions = await db.query<{ name: string }>(
        "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'exai.performance_metrics'::regclass ORDER BY 1",
      );
      const names = partitions.rows.map((row) => row.name);
      expect(names).not.toContain(`performance_metrics_p${old.toISOString().slice(0, 10).replaceAll('-', '')}`);
      // Today's partition and the next two exist before any call needs them.
      for (let ahead = 0; ahead <= 2; ahead += 1) {
        expect(names).toContain(`performance_metrics_p${new Date(today + ahead * dayMs).toISOString().slice(0, 10).replaceAll('-', '')}`);
      }
      expect(await dailyCalls(db)).toBe(300);
    }, 90_000);

    it('finishes a roll-up that died midway after a restart, counting every call once', async () => {
      const database = await newDatabase(backend);
      const hours = [hoursAgo(30), hoursAgo(29), hoursAgo(5), hoursAgo(4), hoursAgo(3)];
      await new DatabaseMetricsSink(database.db).write(events(1_000, hours));
      await expect(rollUpPending(dyingAfter(database.db, 6))).rejects.toThrow('the process died');
      // Some hours were rebuilt before it died; the rest are still marked.
      const left = await pendingCount(database.db);
      expect(left).toBeGreaterThan(0);
      const db = await database.reopen();
      const result = await rollUpPending(db);
      expect(result.hours + result.days).toBeGreaterThan(0);
      expect(await pendingCount(db)).toBe(0);
      expect(await dailyCalls(db)).toBe(1_000);
      const hourly = await db.query<{ n: string }>('SELECT sum(call_count)::text AS n FROM exai.performance_hourly');
      expect(Number(hourly.rows[0]!.n)).toBe(1_000);
    }, 60_000);

    it('never counts a call twice when two instances record and roll up the same hours at once', async () => {
      const database = await newDatabase(backend);
      // On PostgreSQL a second instance has its own pool; PGlite belongs to one process, so both share it.
      const other: Database =
        backend.kind === 'postgres'
          ? await openPostgres({ url: database.location, poolMax: 10, connectTimeoutMs: 5000, logger: silentLogger })
          : database.db;
      if (other !== database.db) cleanups.push(() => other.close());
      const instances = [database.db, other];
      const hours = [hoursAgo(2), hoursAgo(1), hoursAgo(0)];
      const perInstance = 2_000;
      const recorders = instances.map((db) => new MetricsRecorder({ sink: new DatabaseMetricsSink(db), logger: silentLogger, batchSize: 250 }));
      let rolling = true;
      const rollers = instances.map(async (db) => {
        while (rolling) await rollUpPending(db);
      });
      const all = instances.map(() => events(perInstance, hours));
      for (let i = 0; i < perInstance; i += 1) for (const [index, recorder] of recorders.entries()) recorder.record(all[index]![i]!);
      await Promise.all(recorders.map((recorder) => recorder.close()));
      rolling = false;
      await Promise.all(rollers);
      await Promise.all(instances.map((db) => rollUpPending(db)));
      expect(await pendingCount(database.db)).toBe(0);
      expect(await dailyCalls(database.db)).toBe(2 * perInstance);
      const answer = await queryStats(
        { db: database.db, userId: randomUUID(), everyone: true },
        { from: new Date(today - dayMs), to: new Date(now + hourMs), resolution: 'day', bucketed: false, groupBy: [] },
      );
      expect(answer[0]!.call_count).toBe(2 * perInstance);
    }, 90_000);
  });
}
