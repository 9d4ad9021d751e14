/**
 * The recorder against a real database: batches by size and by time, an
 * invalid event left out without holding up the rest, and a database outage
 * (PostgreSQL through a proxy the test cuts) during which calls never wait,
 * the buffer's bound holds, drops are counted, and everything kept is written
 * once the database is back.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/types.js';
import type { MetricEvent } from '../../src/metrics/event.js';
import { DatabaseMetricsSink } from '../../src/metrics/metrics-store.js';
import { MetricsRecorder } from '../../src/metrics/recorder.js';
import { externalBackends } from '../support/env.js';
import { createPgliteDatabase, silentLogger, waitFor, type TestDatabase } from '../support/backends.js';
import type { TcpProxy } from '../support/tcp-proxy.js';
import { startProxiedPostgres, type ProxiedPostgres } from '../support/proxied-postgres.js';

function event(i: number, overrides: Partial<MetricEvent> = {}): MetricEvent {
  return {
    kind: 'provider', at: new Date(Date.now() - 1_000), tool: 'chat', model: 'glm-4.6', provider: 'glm', paramHash: '0123456789abcdef',
    durationMs: 100 + i, timeToFirstTokenMs: 10, inputTokens: 1, outputTokens: 1, costUsd: null, outcome: 'ok', errorClass: null,
    userId: randomUUID(), apiKeyId: null, conversationId: null, ...overrides,
  };
}

async function stored(db: Database): Promise<number> {
  return (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM exai.performance_metrics')).rows[0]!.n;
}

describe('the metrics recorder on embedded PGlite', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createPgliteDatabase();
  });

  afterAll(async () => {
    await database?.destroy();
  });

  it('writes a full batch at once and the rest on its interval', async () => {
    const recorder = new MetricsRecorder({ sink: new DatabaseMetricsSink(database.db), logger: silentLogger, batchSize: 100, flushIntervalMs: 200 });
    const before = await stored(database.db);
    for (let i = 0; i < 100; i += 1) recorder.record(event(i));
    // The hundredth event started a flush without waiting for the interval.
    await waitFor(async () => (await stored(database.db)) === before + 100, 5_000, 'the size-triggered flush');
    for (let i = 0; i < 7; i += 1) recorder.record(event(i));
    await waitFor(async () => (await stored(database.db)) === before + 107, 5_000, 'the interval flush');
    await recorder.close();
    expect(recorder.stats()).toEqual({ buffered: 0, written: 107, dropped: 0, rejected: 0, failedFlushes: 0 });
  });

  it('leaves out an event the database refuses and writes the rest of its batch', async () => {
    const recorder = new MetricsRecorder({ sink: new DatabaseMetricsSink(database.db), logger: silentLogger, batchSize: 50 });
    const before = await stored(database.db);
    for (let i = 0; i < 40; i += 1) recorder.record(i === 17 ? event(i, { kind: 'bogus' as MetricEvent['kind'] }) : event(i));
    // Over-long names are cut to the columns' limits rather than refused.
    recorder.record(event(99, { model: 'm'.repeat(300), errorClass: 'e'.repeat(300), userId: 'not-a-uuid' }));
    await recorder.close();
    expect(recorder.stats()).toMatchObject({ written: 40, rejected: 1, failedFlushes: 0 });
    expect(await stored(database.db)).toBe(before + 40);
    const long = await database.db.query<{ model: string; user_id: string | null }>("SELECT model, user_id FROM exai.performance_metrics WHERE model LIKE 'mmm%'");
    expect(long.rows).toEqual([{ model: 'm'.repeat(200), user_id: null }]);
  });
});

describe.runIf(externalBackends() !== undefined)('the metrics recorder during a PostgreSQL outage', () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let proxied: Database;
  let setup: ProxiedPostgres | undefined;

  beforeAll(async () => {
    setup = await startProxiedPostgres({ poolMax: 4, connectTimeoutMs: 500, queryTimeoutMs: 800 });
    ({ database, proxy, proxied } = setup);
  });

  afterAll(async () => {
    await setup?.close();
  });

  it('never makes a call wait, bounds its buffer, counts drops, and writes what it kept once the database is back', async () => {
    const recorder = new MetricsRecorder({ sink: new DatabaseMetricsSink(proxied), logger: silentLogger, batchSize: 20, maxBuffered: 60, flushIntervalMs: 100 });
    await proxy.cut();
    for (let i = 0; i < 100; i += 1) recorder.record(event(i));
    // record() returned 100 times without waiting for anything: 60 kept, 40 dropped.
    expect(recorder.stats()).toMatchObject({ buffered: 60, dropped: 40, written: 0 });
    await waitFor(() => recorder.stats().failedFlushes >= 1, 10_000, 'a failed flush');
    expect(await stored(database.db)).toBe(0);
    await proxy.restore();
    // Flushes back off after failures (1 s, doubling), so this may take a few seconds.
    await waitFor(async () => recorder.stats().buffered === 0, 40_000, 'the buffer to drain');
    expect(await stored(database.db)).toBe(60);
    await recorder.close();
    expect(recorder.stats()).toMatchObject({ written: 60, dropped: 40, rejected: 0 });
  }, 60_000);

  it('counts what is still buffered as dropped when it closes during an outage', async () => {
    const recorder = new MetricsRecorder({ sink: new DatabaseMetricsSink(proxied), logger: silentLogger, batchSize: 100 });
    await proxy.cut();
    for (let i = 0; i < 5; i += 1) recorder.record(event(i));
    await recorder.close();
    await proxy.restore();
    expect(recorder.stats()).toMatchObject({ buffered: 0, written: 0, dropped: 5 });
  }, 30_000);
});
