/**
 * "metrics": what recording every call costs, how fast recorded calls reach
 * the database, and how fast the reports answer from the roll-ups.
 *
 * 1. Recording overhead on a tool call. Real services (`createServices`, as
 *    `exai serve` builds them, without the background jobs) on a database of
 *    the bench's backend kind, and MCP servers over them (`createMcpServer`),
 *    each driven by the SDK client over the SDK's InMemoryTransport, in this
 *    process. Project: the services as they are (every call measured by
 *    `services.callMetrics`, buffered by the MetricsRecorder, fed to the
 *    Prometheus listener and written to `exai.performance_metrics` by the
 *    recorder itself, when 500 events wait or on its 1 s timer). Baseline: the
 *    same services whose `callMetrics` is a stub that records nothing
 *    (startToolCall hands out one shared no-op ToolCallMetrics). Two more
 *    sides explain the difference: a recorder whose sink discards (the
 *    in-process cost alone) and a second stub (the noise floor). The tool is
 *    `listmodels` (no database, no model: the cheapest real tool, so the
 *    relative cost is the largest it can be). Sides run blocks of sequential
 *    calls, their order rotating; each block ends with its side's flush(), and
 *    that wait counts, so a side's database writes are paid by that side and
 *    the next starts with an empty buffer. Value: mean time per call (block
 *    time / calls). Target: at most 2% more or at most 50 µs more per call.
 * 2. Ingest: events/s from `recorder.record()` until `recorder.flush()` has
 *    them committed (DatabaseMetricsSink: one transaction as service_role per
 *    batch of 500, INSERT … SELECT unnest plus the stale-hour marks), beside
 *    the same rows in the same batches inserted by one multi-row
 *    INSERT … SELECT unnest each, as the superuser, without a transaction,
 *    role switch or marks. Target: ratio >= 0.7.
 * 3. Query: a 30-day trend (view trend, daily buckets, by model) and a model
 *    comparison for one tool over 30 days (view compare), through
 *    `performanceReport`, over roll-ups holding 10 million calls, as one user
 *    (row-level security) and as admin (everyone). The current hour is stale
 *    with half an hour of raw calls, as in a live system whose roll-up runs
 *    every minute. Target: p95 at most 50 ms (absolute; the ratio against the
 *    baseline — the same question over a raw table with exact percentile_disc —
 *    is informational).
 *
 * Each figure removes its rows afterwards (the metrics tables are emptied:
 * the bench's database is its own), the baseline table is dropped, and the
 * services' home and Redis keys are removed.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { Redis } from 'ioredis';
import { createServices, type Services } from '../src/app/services.js';
import { localPrincipal } from '../src/auth/principal.js';
import { loadConfig } from '../src/config.js';
import { asService, asUser } from '../src/db/session.js';
import type { Database, Queryable, QueryResult, Row } from '../src/db/types.js';
import { createMcpServer } from '../src/mcp/server.js';
import { MemoryCallRecorder } from '../src/providers/call-recorder.js';
import { dayMs, hourMs, startOfDay, startOfHour, utcDay } from '../src/metrics/buckets.js';
import { CallMetrics, type ToolCallMetrics, type ToolCallStart } from '../src/metrics/call-metrics.js';
import type { MetricEvent } from '../src/metrics/event.js';
import { DatabaseMetricsSink } from '../src/metrics/metrics-store.js';
import { MetricsRecorder, type MetricsSink } from '../src/metrics/recorder.js';
import type { PerformanceInput } from '../src/metrics/report-input.js';
import { performanceReport } from '../src/metrics/reports.js';
import { rebuildEveryoneDay } from '../src/metrics/rollups.js';
import { DurationSketch } from '../src/metrics/sketch.js';
import type { StatsScope } from '../src/metrics/stats-query.js';
import { ensureUser } from '../src/users/users.js';
import { externalUrls } from './backends.js';
import { startFakeProvider, type FakeProvider } from './fake-provider.js';
import { measureRetention } from './metrics-retention.js';
import { compareThroughput, makeResult, runForDuration, type BenchContext, type BenchResult, type Benchmark } from './harness.js';
import {
  comparedTool,
  insertRollupSql,
  makeGroups,
  rawColumns,
  rawEvent,
  rawInsertSql,
  RollupColumns,
  seeded,
  SketchShapes,
  type CallGroup,
} from './metrics-data.js';

const sizes = {
  quick: {
    overhead: { warmup: 300, blocks: 3, perBlock: 1_000, microEvents: 10_000 },
    ingest: { warmupMs: 400, roundMs: 800, rounds: 2, burst: 5_000 },
    query: { calls: 10_000_000, rawRows: 30_000, warmup: 1, iterations: 16, baselineRuns: 2 },
  },
  full: {
    overhead: { warmup: 1_000, blocks: 15, perBlock: 2_000, microEvents: 100_000 },
    ingest: { warmupMs: 1_500, roundMs: 3_000, rounds: 4, burst: 5_000 },
    query: { calls: 10_000_000, rawRows: 300_000, warmup: 10, iterations: 200, baselineRuns: 10 },
  },
};

const overheadRatioTarget = 1.02;
const overheadAddedUsTarget = 50;
const ingestTarget = 0.7;
const queryP95TargetMs = 50;
/** The recorder's default batch size, used by both ingest sides. */
const batchSize = 500;
const fakeModel = 'bench-model';

type Cleanup = () => Promise<void>;

/** Runs cleanups in reverse order, each once, reporting (not throwing) failures. */
function cleanupList(label: string): { add(step: Cleanup): void; run(): Promise<void> } {
  const steps: Cleanup[] = [];
  let ran = false;
  return {
    add: (step) => void steps.push(step),
    async run() {
      if (ran) return;
      ran = true;
      for (const step of steps.reverse()) {
        await step().catch((error: Error) => process.stderr.write(`bench: ${label} clean-up: ${error.message}\n`));
      }
    },
  };
}

/** Empties what the figures write: the bench's database is its own, so nothing else lives there. */
async function emptyMetricsTables(db: Database): Promise<void> {
  await db.exec(
    `TRUNCATE exai.performance_metrics, exai.performance_hourly, exai.performance_daily, exai.performance_daily_all;
     DELETE FROM exai.rollup_pending;`,
  );
}

function percentile(samples: readonly number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

const round3 = (value: number) => Number(value.toFixed(3));

// 1. Recording overhead -------------------------------------------------------

/** "Without the recorder": records nothing; one shared no-op ToolCallMetrics for every call. */
function noRecording(): CallMetrics {
  const call = { record: () => undefined, finish: () => undefined } as unknown as ToolCallMetrics;
  return { record: () => undefined, startToolCall: () => call } as unknown as CallMetrics;
}

async function deleteRedisKeys(url: string, pattern: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/**
 * Services as `exai serve` makes them (no jobs): on PGlite an embedded
 * database in a fresh EXAI_HOME (on disk, as exai runs it) with the in-process
 * cache; on PostgreSQL the bench's own database and its Redis under a unique
 * key prefix.
 */
async function openServices(context: BenchContext, fake: FakeProvider, cleanups: ReturnType<typeof cleanupList>): Promise<{ services: Services; where: string }> {
  const { backend, logger } = context;
  const home = mkdtempSync(path.join(os.tmpdir(), 'exai-bench-metrics-'));
  cleanups.add(async () => rmSync(home, { recursive: true, force: true }));
  const env: Record<string, string> = {
    EXAI_HOME: home,
    // Tens of thousands of calls a minute from one user: the limits would stop the run.
    EXAI_RATE_REQUESTS_PER_MINUTE: '0',
    EXAI_RATE_TOKENS_PER_MINUTE: '0',
    OPENAI_COMPAT_BASE_URL: fake.baseUrl,
    OPENAI_COMPAT_MODELS: fakeModel,
  };
  let where = 'embedded PGlite on disk in a fresh EXAI_HOME, in-process cache';
  if (!backend.name.startsWith('pglite')) {
    const urls = externalUrls();
    if ('missing' in urls) throw new Error(`metrics bench: ${urls.missing} not set`);
    const current = await backend.db.query<{ name: string }>('SELECT current_database() AS name');
    const url = new URL(urls.databaseUrl);
    url.pathname = `/${current.rows[0]!.name}`;
    const prefix = `exai-bench-metrics-${randomBytes(6).toString('hex')}`;
    env.DATABASE_URL = url.toString();
    env.REDIS_URL = urls.redisUrl;
    env.EXAI_REDIS_PREFIX = prefix;
    // `<prefix>:` (cache) and `<prefix>-rl:` (rate limits).
    cleanups.add(() => deleteRedisKeys(urls.redisUrl, `${prefix}*`));
    where = "the bench's PostgreSQL database and Redis (own key prefix)";
  }
  const config = loadConfig(env, { cwd: home });
  const services = await createServices(config, logger, { migrate: true, jobs: false });
  cleanups.add(() => services.close());
  return { services, where };
}

async function connectClient(services: Services, cleanups: ReturnType<typeof cleanupList>): Promise<Client> {
  const server = createMcpServer(services, localPrincipal(services.localUser), 'bench');
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await server.connect(serverTransport);
  const client = new Client({ name: 'bench-metrics', version: '1.0.0' });
  await client.connect(clientTransport);
  cleanups.add(async () => {
    await client.close();
    await server.close();
  });
  return client;
}

async function callListModels(client: Client): Promise<void> {
  const result = (await client.callTool({ name: 'listmodels', arguments: {} })) as CallToolResult;
  if (result.isError) throw new Error(`listmodels failed: ${JSON.stringify(result.content)}`);
}

/**
 * Counts the writes of the services' recorder (how many transactions, how
 * many events each) by wrapping its sink, which the recorder keeps private;
 * undefined if the recorder no longer has that shape (the details then say n/a).
 */
function watchWrites(recorder: MetricsRecorder): { counts: { writes: number; events: number; ms: number }; reset(): void } | undefined {
  const options = (recorder as unknown as { options?: { sink?: MetricsSink } }).options;
  const sink = options?.sink;
  if (sink === undefined || typeof sink.write !== 'function') return undefined;
  const counts = { writes: 0, events: 0, ms: 0 };
  const write = sink.write.bind(sink);
  sink.write = async (events) => {
    const start = performance.now();
    try {
      return await write(events);
    } finally {
      counts.writes += 1;
      counts.events += events.length;
      counts.ms += performance.now() - start;
    }
  };
  return {
    counts,
    reset() {
      counts.writes = 0;
      counts.events = 0;
      counts.ms = 0;
    },
  };
}

interface OverheadSide {
  label: string;
  client: Client;
  /** Writes what this side recorded; its wait counts in the side's time. */
  flush: () => Promise<void>;
  samplesUs: number[];
  wallMs: number;
  flushMs: number;
  calls: number;
}

function overheadSide(label: string, client: Client, flush: () => Promise<void>): OverheadSide {
  return { label, client, flush, samplesUs: [], wallMs: 0, flushMs: 0, calls: 0 };
}

const perCallUs = (side: OverheadSide) => (side.wallMs * 1000) / side.calls;

async function measureOverhead(context: BenchContext): Promise<BenchResult> {
  const { backend, quick, logger, progress } = context;
  const size = (quick ? sizes.quick : sizes.full).overhead;
  const cleanups = cleanupList('metrics overhead');
  const unregister = context.registerCleanup?.(() => cleanups.run());
  try {
    // A configured provider, so listmodels has a model to list; no call reaches it.
    const fake = await startFakeProvider();
    cleanups.add(() => fake.close());
    // On PostgreSQL the services share the bench's database: its metrics tables are emptied after they close.
    if (!backend.name.startsWith('pglite')) cleanups.add(() => emptyMetricsTables(backend.db));
    const started = performance.now();
    const { services, where } = await openServices(context, fake, cleanups);
    progress(`recording overhead: services ready in ${(performance.now() - started).toFixed(0)} ms (${where})`);
    const recorder = services.recorder;
    const writes = watchWrites(recorder);
    // The middle side: recording as exai does it (events built, the Prometheus listener, the buffer), but a sink that discards.
    const discarding = new MetricsRecorder({ sink: { write: async () => 0 }, logger });
    discarding.onEvent((event) => services.prometheus.observe(event));
    cleanups.add(() => discarding.close());
    // listmodels calls no model and names none, so neither the price nor the model name is ever looked up.
    const inProcessOnly = new CallMetrics(discarding, () => null, new MemoryCallRecorder(), () => null);
    const withRecorder = overheadSide('with the recorder', await connectClient(services, cleanups), () => recorder.flush());
    const discardingSide = overheadSide('recorder with a discarding sink', await connectClient({ ...services, callMetrics: inProcessOnly }, cleanups), () =>
      discarding.flush(),
    );
    const without = overheadSide('without (stub callMetrics)', await connectClient({ ...services, callMetrics: noRecording() }, cleanups), () => recorder.flush());
    // The same as `without`: how far two identical sides drift apart in this run (the noise floor of the difference).
    const without2 = overheadSide('without, a second stub', await connectClient({ ...services, callMetrics: noRecording() }, cleanups), () => recorder.flush());
    const sides = [withRecorder, discardingSide, without, without2];

    const runBlock = async (side: OverheadSide, count: number, measured: boolean) => {
      const start = performance.now();
      for (let i = 0; i < count; i++) {
        const callStart = performance.now();
        await callListModels(side.client);
        if (measured) side.samplesUs.push((performance.now() - callStart) * 1000);
      }
      // This side's events reach the database before another side runs.
      const flushStart = performance.now();
      await side.flush();
      const end = performance.now();
      if (measured) {
        side.wallMs += end - start;
        side.flushMs += end - flushStart;
        side.calls += count;
      }
    };
    for (const side of sides) await runBlock(side, size.warmup, false);
    const before = recorder.stats();
    writes?.reset();
    for (let block = 0; block < size.blocks; block++) {
      for (let k = 0; k < sides.length; k++) await runBlock(sides[(block + k) % sides.length]!, size.perBlock, true);
    }
    const after = recorder.stats();
    const measuredWrites = writes === undefined ? undefined : { ...writes.counts };
    const written = after.written - before.written;
    if (written !== withRecorder.calls || after.dropped !== before.dropped || after.rejected !== before.rejected || after.failedFlushes !== before.failedFlushes) {
      throw new Error(
        `metrics bench: ${withRecorder.calls} recorded calls, ${written} events written, ${after.dropped - before.dropped} dropped, ${after.failedFlushes - before.failedFlushes} failed flushes`,
      );
    }

    // Where the added time goes, in process: measuring a call (event built, Prometheus listener, buffered) …
    const start: ToolCallStart = {
      tool: 'listmodels',
      userId: services.localUser.id,
      apiKeyId: null,
      params: { model: null, temperature: null, thinking: null, webSearch: false, maxTokens: null },
    };
    const chunk = 5_000; // below the recorder's 10,000-event bound, so nothing is dropped
    let recordMs = 0;
    let flushMs = 0;
    for (let done = 0; done < size.microEvents; done += chunk) {
      const t0 = performance.now();
      for (let i = 0; i < chunk; i++) services.callMetrics.startToolCall(start).finish({ outcome: 'ok', errorClass: null, conversationId: null });
      const t1 = performance.now();
      // … and writing the events (batches of 500, one transaction each).
      await recorder.flush();
      recordMs += t1 - t0;
      flushMs += performance.now() - t1;
    }
    const stored = await services.db.query<{ n: number }>('SELECT count(*)::int AS n FROM exai.performance_metrics');

    const projectUs = perCallUs(withRecorder);
    const baselineUs = perCallUs(without);
    const discardingUs = perCallUs(discardingSide);
    progress(`recording overhead: ${sides.map((side) => `${side.label} ${perCallUs(side).toFixed(1)} µs`).join(', ')} per call`);
    const p50p99 = (side: OverheadSide) => `${percentile(side.samplesUs, 0.5).toFixed(1)} / ${percentile(side.samplesUs, 0.99).toFixed(1)}`;
    return makeResult({
      name: 'metrics: recording overhead, MCP listmodels (mean)',
      backend: backend.name,
      value: projectUs,
      unit: 'µs',
      baseline: baselineUs,
      better: 'lower',
      target: overheadRatioTarget,
      orDifference: overheadAddedUsTarget,
      notes:
        `in-process MCP (SDK client, InMemoryTransport, createMcpServer over real services: ${where}; no background jobs), ` +
        `tool listmodels (no database, no model), sequential calls; ${size.blocks} blocks of ${size.perBlock} calls per side, the sides' order rotating, ` +
        `after ${size.warmup} warm-up calls each. project: services as built (services.callMetrics → MetricsRecorder with the Prometheus listener → ` +
        `DatabaseMetricsSink, which writes by itself when 500 events wait or every second); baseline: the same services with callMetrics ` +
        `replaced by a stub that records nothing (one shared no-op ToolCallMetrics). Value: mean µs per call = block time / calls, each block ending ` +
        `with the side's recorder.flush(), whose wait counts: the database writes of the recorded events are in the figure. ` +
        `Two more sides run in the same blocks (details): one records through a recorder whose sink discards (separating the in-process cost ` +
        `from the writes), one is a second stub (the noise floor: two identical sides differ by that much). With ${size.perBlock} calls per block ` +
        `the recorder's own flushes (${batchSize} events waiting, or its 1 s timer) run in the background while calls go on, as under sustained load; ` +
        `what is left is written at the block's end. ` +
        `One tool event per call. Target: at most ${Math.round((overheadRatioTarget - 1) * 100)}% or at most ${overheadAddedUsTarget} µs more per call.`,
      details: {
        'with the recorder: p50 / p99 per call (µs)': p50p99(withRecorder),
        'recorder with a discarding sink: mean per call (µs)': round3(discardingUs),
        'recorder with a discarding sink: p50 / p99 per call (µs)': p50p99(discardingSide),
        'without: p50 / p99 per call (µs)': p50p99(without),
        'noise check: a second stub side, mean per call (µs)': round3(perCallUs(without2)),
        '= in-process recording (discarding − without) (µs per call)': round3(discardingUs - baselineUs),
        '= database writes (with − discarding) (µs per call)': round3(projectUs - discardingUs),
        'with the recorder: end-of-block flush wait (µs per call)': round3((withRecorder.flushMs * 1000) / withRecorder.calls),
        'with the recorder: mean per call without that wait (µs)': round3(((withRecorder.wallMs - withRecorder.flushMs) * 1000) / withRecorder.calls),
        'events written during the measured blocks': written,
        'recorder writes (one transaction each) during the measured blocks': measuredWrites?.writes ?? 'n/a',
        '  mean events per write': measuredWrites === undefined ? 'n/a' : round3(measuredWrites.events / Math.max(1, measuredWrites.writes)),
        '  mean ms per write': measuredWrites === undefined ? 'n/a' : round3(measuredWrites.ms / Math.max(1, measuredWrites.writes)),
        'in process alone: startToolCall + finish → record, listener (µs)': round3((recordMs * 1000) / size.microEvents),
        'in process alone: write one event (flush of 5,000, batches of 500) (µs)': round3((flushMs * 1000) / size.microEvents),
        'rows in exai.performance_metrics afterwards': stored.rows[0]!.n,
      },
    });
  } finally {
    await cleanups.run();
    unregister?.();
  }
}

// 2. Ingest -------------------------------------------------------------------

async function measureIngest(context: BenchContext): Promise<BenchResult> {
  const { backend, quick, logger, progress } = context;
  const { db } = backend;
  const size = (quick ? sizes.quick : sizes.full).ingest;
  const cleanups = cleanupList('metrics ingest');
  const unregister = context.registerCleanup?.(() => cleanups.run());
  cleanups.add(() => emptyMetricsTables(db));
  try {
    const users = Array.from({ length: 10 }, () => ({ userId: randomUUID(), apiKeyId: randomUUID() }));
    const groups = makeGroups(users);
    const random = seeded(42);
    // Calls of the last ten minutes, tool and provider events alike; both sides store the same events.
    const now = Date.now();
    const events: MetricEvent[] = Array.from({ length: size.burst }, (_, i) =>
      rawEvent(groups[i % groups.length]!, i % 2 === 0 ? 'provider' : 'tool', new Date(now - random() * 600_000), random),
    );
    // The partitions exist before either side runs (made once per day by exai; not part of ingest).
    for (const day of new Set(events.map((event) => utcDay(event.at)))) await db.query('SELECT exai.ensure_metrics_partition($1::date)', [day]);

    const recorder = new MetricsRecorder({ sink: new DatabaseMetricsSink(db), logger, batchSize });
    cleanups.add(() => recorder.close());
    let batchesProject = 0;
    const project = (durationMs: number) =>
      runForDuration(1, durationMs, async () => {
        for (const event of events) recorder.record(event);
        await recorder.flush();
        batchesProject += Math.ceil(events.length / batchSize);
        return events.length;
      });
    const batches = Array.from({ length: Math.ceil(events.length / batchSize) }, (_, i) => events.slice(i * batchSize, (i + 1) * batchSize));
    const insert = rawInsertSql('exai.performance_metrics');
    let baselineRows = 0;
    const baseline = (durationMs: number) =>
      runForDuration(1, durationMs, async () => {
        for (const batch of batches) await db.query(insert, rawColumns(batch));
        baselineRows += events.length;
        return events.length;
      });
    const comparison = await compareThroughput({ warmupMs: size.warmupMs, roundMs: size.roundMs, rounds: size.rounds, project, baseline });
    const stats = recorder.stats();
    const stored = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM exai.performance_metrics');
    if (stats.dropped > 0 || stats.rejected > 0 || stats.failedFlushes > 0 || stored.rows[0]!.n !== stats.written + baselineRows) {
      throw new Error(
        `metrics bench: ingest wrote ${stats.written} + ${baselineRows} rows, ${stored.rows[0]!.n} stored, ${stats.dropped} dropped, ${stats.rejected} rejected, ${stats.failedFlushes} failed flushes`,
      );
    }
    const marks = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM exai.rollup_pending');
    const projectMs = comparison.projectRounds.reduce((sum, r) => sum + r.ms, 0);
    const baselineMs = comparison.baselineRounds.reduce((sum, r) => sum + r.ms, 0);
    const projectEvents = comparison.projectRounds.reduce((sum, r) => sum + r.ops, 0);
    const baselineEvents = comparison.baselineRounds.reduce((sum, r) => sum + r.ops, 0);
    progress(`ingest: ${comparison.project.toFixed(0)} events/s through the recorder, ${comparison.baseline.toFixed(0)} raw`);
    return makeResult({
      name: 'metrics: ingest, record → flushed (events/s)',
      backend: backend.name,
      value: comparison.project,
      unit: 'events/s',
      baseline: comparison.baseline,
      better: 'higher',
      target: ingestTarget,
      notes:
        `project: MetricsRecorder.record() of ${size.burst} events (tool and provider calls of 10 users, 5 models, the last 10 minutes) ` +
        `then await flush(), until committed: DatabaseMetricsSink, batches of ${batchSize}, each one transaction as service_role ` +
        `(one JSON text through json_to_recordset into exai.performance_metrics, RETURNING at, + upsert of the stale-hour marks in exai.rollup_pending); ` +
        `baseline: the same events in the same batches as one multi-row INSERT … SELECT unnest each, as the superuser, autocommit, ` +
        `no role switch, no marks. Partitions made beforehand. ${size.rounds} alternating rounds of ${size.roundMs} ms per side after a warm-up; ` +
        `one flush in flight at a time (the recorder's rule), one baseline statement at a time. ` +
        `The table grows through the run (${stored.rows[0]!.n.toLocaleString('en-US')} rows at the end).`,
      details: {
        'project: ms per batch of 500': round3(projectMs / Math.max(1, projectEvents / batchSize)),
        'baseline: ms per batch of 500': round3(baselineMs / Math.max(1, baselineEvents / batchSize)),
        'project batches (warm-up included)': batchesProject,
        'rows stored (both sides)': stored.rows[0]!.n,
        'stale marks left (hours)': marks.rows[0]!.n,
      },
    });
  } finally {
    await cleanups.run();
    unregister?.();
  }
}

// 3. Query --------------------------------------------------------------------

interface Dataset {
  now: number;
  users: string[];
  calls: number;
  dailyRows: number;
  hourlyRows: number;
  rawRows: number;
  sketchShapes: number;
  meanSketchBytes: number;
  groupsPerDay: number;
}

const rollupBatch = 5_000;

/**
 * Roll-up rows as the roll-up jobs would have left them: daily rows for the
 * last 30 days (today's covering the hours before the current one), hourly
 * rows for the last 3 days up to the current hour, and the current hour stale
 * with half an hour of raw calls. Every call group has a tool row and a
 * provider row; counts follow the group's weight, with weekends at 40%, and
 * add up to `targetCalls` raw-equivalent calls.
 */
export async function populate(db: Database, groups: CallGroup[], targetCalls: number, now: number): Promise<Omit<Dataset, 'users'>> {
  const today = startOfDay(new Date(now)).getTime();
  const currentHour = startOfHour(new Date(now)).getTime();
  const hoursToday = (currentHour - today) / hourMs;
  const days = Array.from({ length: 30 }, (_, i) => today - (29 - i) * dayMs);
  const dayFactor = (dayStart: number) => {
    const weekday = new Date(dayStart).getUTCDay();
    return weekday === 0 || weekday === 6 ? 0.4 : 1;
  };
  const hoursOf = (dayStart: number) => (dayStart === today ? hoursToday + 0.5 : 24);
  const weights = groups.reduce((sum, group) => sum + group.weight, 0);
  const units = days.reduce((sum, day) => sum + dayFactor(day) * hoursOf(day), 0) * weights;
  const base = targetCalls / (2 * units); // a tool row and a provider row per call group
  const perHour = (group: CallGroup, dayStart: number) => Math.max(1, Math.round(base * group.weight * dayFactor(dayStart)));
  const kinds = ['provider', 'tool'] as const;
  const shapes = new SketchShapes();
  let calls = 0;
  let sketchBytes = 0;

  const insertRollups = async (table: 'performance_daily' | 'performance_hourly', fill: (columns: RollupColumns, flush: () => Promise<void>) => Promise<void>) => {
    const columns = new RollupColumns();
    let rows = 0;
    const flush = async () => {
      if (columns.length === 0) return;
      rows += columns.length;
      await db.query(insertRollupSql(table), columns.take());
    };
    await fill(columns, async () => {
      if (columns.length >= rollupBatch) await flush();
    });
    await flush();
    return rows;
  };

  const dailyRows = await insertRollups('performance_daily', async (columns, maybeFlush) => {
    for (const day of days) {
      const hours = day === today ? hoursToday : 24;
      if (hours === 0) continue;
      for (const group of groups) {
        for (const kind of kinds) {
          const shape = shapes.get(group.profile, kind, perHour(group, day) * hours);
          columns.add(new Date(day), group, kind, shape);
          calls += shape.count;
          sketchBytes += shape.bytes.length;
        }
        await maybeFlush();
      }
    }
  });
  const hourlyRows = await insertRollups('performance_hourly', async (columns, maybeFlush) => {
    for (let hour = today - 2 * dayMs; hour < currentHour; hour += hourMs) {
      for (const group of groups) {
        for (const kind of kinds) columns.add(new Date(hour), group, kind, shapes.get(group.profile, kind, perHour(group, startOfDay(new Date(hour)).getTime())));
        await maybeFlush();
      }
    }
  });

  // Everyone's totals per day, as the daily roll-up writes them beside the per-user rows.
  for (const day of days) await rebuildEveryoneDay(db, new Date(day));

  // The current hour: stale, with the calls of its first half hour still raw.
  const random = seeded(7);
  const raw: MetricEvent[] = [];
  const span = Math.max(1, now - currentHour);
  for (const group of groups) {
    for (const kind of kinds) {
      const count = Math.round(perHour(group, today) / 2);
      for (let i = 0; i < count; i++) raw.push(rawEvent(group, kind, new Date(currentHour + random() * span), random));
    }
  }
  await db.query('SELECT exai.ensure_metrics_partition($1::date)', [utcDay(new Date(currentHour))]);
  for (let i = 0; i < raw.length; i += rollupBatch) await db.query(rawInsertSql('exai.performance_metrics'), rawColumns(raw.slice(i, i + rollupBatch)));
  await db.query(`INSERT INTO exai.rollup_pending (level, bucket) VALUES ('hour', $1) ON CONFLICT (level, bucket) DO NOTHING`, [new Date(currentHour)]);
  calls += raw.length;
  // As autovacuum (PostgreSQL) or exai's maintenance (PGlite) would after a bulk load.
  await db.exec('ANALYZE exai.performance_daily; ANALYZE exai.performance_daily_all; ANALYZE exai.performance_hourly; ANALYZE exai.performance_metrics; ANALYZE exai.rollup_pending;');
  return {
    now,
    calls,
    dailyRows,
    hourlyRows,
    rawRows: raw.length,
    sketchShapes: shapes.size,
    meanSketchBytes: sketchBytes / Math.max(1, dailyRows),
    groupsPerDay: groups.length * kinds.length,
  };
}

/** The baseline's table: raw calls over the same 30 days (same groups and distributions), with the indexes a spend log has. */
export async function populateRawTable(db: Database, table: string, groups: CallGroup[], rows: number, now: number): Promise<void> {
  await db.exec(
    `CREATE TABLE ${table} (LIKE exai.performance_metrics);
     CREATE INDEX ON ${table} (at);
     CREATE INDEX ON ${table} (user_id, at);`,
  );
  const random = seeded(99);
  const today = startOfDay(new Date(now)).getTime();
  const from = today - 29 * dayMs;
  const cumulative: number[] = [];
  let total = 0;
  for (const group of groups) cumulative.push((total += group.weight));
  const pick = () => {
    const target = random() * total;
    let low = 0;
    let high = cumulative.length - 1;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (cumulative[mid]! > target) high = mid;
      else low = mid + 1;
    }
    return groups[low]!;
  };
  /** A time in the 30 days, weekends at 40% as in the roll-ups. */
  const pickTime = (): number => {
    for (;;) {
      const at = from + random() * (now - from);
      const weekday = new Date(at).getUTCDay();
      if (!(weekday === 0 || weekday === 6) || random() < 0.4) return at;
    }
  };
  const insert = rawInsertSql(table);
  const batch = 20_000;
  for (let done = 0; done < rows; done += batch) {
    const events: MetricEvent[] = [];
    for (let i = 0; i < Math.min(batch, rows - done); i++) {
      events.push(rawEvent(pick(), (done + i) % 2 === 0 ? 'provider' : 'tool', new Date(pickTime()), random));
    }
    await db.query(insert, rawColumns(events));
  }
  await db.exec(`ANALYZE ${table};`);
}

/** What a report asks, and the same question asked of the raw table with exact percentiles. */
interface Question {
  label: string;
  input: PerformanceInput;
  baselineSql: (table: string, userFilter: boolean) => string;
  baselineParams: (from: Date, to: Date, userId: string | undefined) => unknown[];
}

const rawAggregates = `count(*)::float8 AS call_count, (count(*) FILTER (WHERE outcome <> 'ok'))::float8 AS error_count,
  avg(duration_ms) AS avg_ms, percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms) AS percentiles,
  max(duration_ms) AS max_ms, avg(ttft_ms) AS avg_ttft_ms, sum(input_tokens)::float8 AS input_tokens,
  sum(output_tokens)::float8 AS output_tokens, coalesce(sum(cost_usd), 0) AS cost_usd`;

const questions: Question[] = [
  {
    label: '30-day trend by model, daily buckets',
    input: { view: 'trend', since: '30d', bucket: 'day', group_by: ['model'] },
    baselineSql: (table, userFilter) =>
      `SELECT date_trunc('day', at, 'UTC') AS bucket, model, ${rawAggregates}
         FROM ${table} WHERE at >= $1 AND at < $2 AND kind = 'provider'${userFilter ? ' AND user_id = $3' : ''}
        GROUP BY 1, 2 ORDER BY 1, call_count DESC`,
    baselineParams: (from, to, userId) => (userId === undefined ? [from, to] : [from, to, userId]),
  },
  {
    label: `compare models for ${comparedTool}, 30 days`,
    input: { view: 'compare', since: '30d', tool: comparedTool },
    baselineSql: (table, userFilter) =>
      `SELECT * FROM (
         SELECT model, provider, ${rawAggregates}
           FROM ${table} WHERE at >= $1 AND at < $2 AND kind = 'provider' AND tool = $3${userFilter ? ' AND user_id = $4' : ''}
          GROUP BY model, provider) answer
        ORDER BY percentiles[2]`,
    baselineParams: (from, to, userId) => (userId === undefined ? [from, to, comparedTool] : [from, to, comparedTool, userId]),
  },
];

/** A database that times each transaction and each statement in it, and keeps the last result's rows. */
function timedDatabase(db: Database) {
  const timing = { transactionMs: [] as number[], statementMs: [] as number[], lastRows: [] as Row[], lastText: '', lastParams: [] as readonly unknown[] };
  const timedTx = (tx: Queryable): Queryable => ({
    async query<R = Row>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      const start = performance.now();
      const result = await tx.query<R>(text, params);
      // The role switch is a statement too; only the report's own statement returns sketches.
      if (!text.includes('set_config')) {
        timing.statementMs.push(performance.now() - start);
        timing.lastRows = result.rows as Row[];
        timing.lastText = text;
        timing.lastParams = params ?? [];
      }
      return result;
    },
    exec: (script: string) => tx.exec(script),
  });
  const timed: Database = {
    kind: db.kind,
    query: (text, params) => db.query(text, params),
    exec: (script) => db.exec(script),
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const start = performance.now();
      try {
        return await db.transaction((tx) => fn(timedTx(tx)));
      } finally {
        timing.transactionMs.push(performance.now() - start);
      }
    },
    maintenance: (statement) => db.maintenance(statement),
    ping: () => db.ping(),
    close: () => db.close(),
  };
  return { db: timed, timing };
}

/** The server's own time for a statement (EXPLAIN ANALYZE with timing off), as the scope's role: median of `repeat`. */
async function serverTime(db: Database, scope: StatsScope, text: string, params: readonly unknown[], repeat: number): Promise<{ planningMs: number; executionMs: number }> {
  const planning: number[] = [];
  const execution: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const explain = (tx: Queryable) => tx.query<Row>(`EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ${text}`, params);
    const result = scope.everyone ? await asService(db, explain) : await asUser(db, scope.userId, explain);
    const cell = Object.values(result.rows[0] ?? {})[0];
    const plan = (typeof cell === 'string' ? JSON.parse(cell) : cell) as { 'Planning Time': number; 'Execution Time': number }[];
    planning.push(plan[0]!['Planning Time']);
    execution.push(plan[0]!['Execution Time']);
  }
  return { planningMs: percentile(planning, 0.5), executionMs: percentile(execution, 0.5) };
}

/** Decoding and merging the sketches of one answer's rows, timed apart (median of `repeat`). */
function profileSketches(rows: Row[], groupBy: readonly string[], bucketed: boolean, repeat: number): { decodeMs: number; mergeMs: number; sketches: number; bytes: number } {
  const stored = rows.filter((row) => row.sketch !== null && row.sketch !== undefined).map((row) => row.sketch as Uint8Array);
  const keyOf = (row: Row) => JSON.stringify([bucketed ? String(row.bucket) : '', ...groupBy.map((column) => row[column] ?? null)]);
  const decodeTimes: number[] = [];
  const mergeTimes: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    const decoded = stored.map((bytes) => DurationSketch.decode(bytes));
    const t1 = performance.now();
    const groups = new Map<string, DurationSketch>();
    let index = 0;
    for (const row of rows) {
      if (row.sketch === null || row.sketch === undefined) continue;
      const key = keyOf(row);
      let merged = groups.get(key);
      if (merged === undefined) groups.set(key, (merged = DurationSketch.empty()));
      merged.merge(decoded[index++]!);
    }
    for (const merged of groups.values()) {
      merged.quantile(0.5);
      merged.quantile(0.95);
      merged.quantile(0.99);
    }
    mergeTimes.push(performance.now() - t1);
    decodeTimes.push(t1 - t0);
  }
  return { decodeMs: percentile(decodeTimes, 0.5), mergeMs: percentile(mergeTimes, 0.5), sketches: stored.length, bytes: stored.reduce((sum, bytes) => sum + bytes.length, 0) };
}

async function measureQueries(context: BenchContext): Promise<BenchResult[]> {
  const { backend, quick, progress } = context;
  const { db } = backend;
  const size = (quick ? sizes.quick : sizes.full).query;
  const cleanups = cleanupList('metrics query');
  const unregister = context.registerCleanup?.(() => cleanups.run());
  const rawTable = `public.exai_bench_raw_calls_${randomBytes(4).toString('hex')}`;
  cleanups.add(() => emptyMetricsTables(db));
  cleanups.add(() => db.exec(`DROP TABLE IF EXISTS ${rawTable}`).then(() => undefined));
  try {
    await emptyMetricsTables(db);
    const users: { userId: string; apiKeyId: string }[] = [];
    const tag = randomBytes(3).toString('hex');
    for (let u = 0; u < 10; u++) users.push({ userId: (await ensureUser(db, `bench-metrics-${tag}-${u}`)).id, apiKeyId: randomUUID() });
    const groups = makeGroups(users);
    const now = Date.now();
    let start = performance.now();
    const data = await populate(db, groups, size.calls, now);
    progress(
      `query: ${data.dailyRows} daily + ${data.hourlyRows} hourly roll-up rows and ${data.rawRows} raw calls (${data.calls.toLocaleString('en-US')} calls) in ${((performance.now() - start) / 1000).toFixed(1)} s`,
    );
    start = performance.now();
    await populateRawTable(db, rawTable, groups, size.rawRows, now);
    progress(`query: baseline table of ${size.rawRows.toLocaleString('en-US')} raw calls in ${((performance.now() - start) / 1000).toFixed(1)} s`);

    const timed = timedDatabase(db);
    const user = users[0]!.userId;
    const scopes: { label: string; scope: StatsScope; baselineUser: string | undefined }[] = [
      { label: 'one user (row-level security)', scope: { db: timed.db, userId: user, everyone: false }, baselineUser: user },
      { label: 'admin, everyone', scope: { db: timed.db, userId: user, everyone: true }, baselineUser: undefined },
    ];
    const results: BenchResult[] = [];
    for (const question of questions) {
      for (const { label, scope, baselineUser } of scopes) {
        const first = await performanceReport(scope, question.input, now);
        const from = new Date(first.from);
        const alignedFrom = new Date(Math.floor(from.getTime() / dayMs) * dayMs);
        const alignedTo = new Date(Math.ceil(now / dayMs) * dayMs);
        const baselineSql = question.baselineSql(rawTable, baselineUser !== undefined);
        const baselineParams = question.baselineParams(alignedFrom, alignedTo, baselineUser);
        const projectMs: number[] = [];
        const baselineMs: number[] = [];
        let answerRows = first.rows.length;
        let baselineRows = 0;
        const runProject = async (record: boolean) => {
          const t = performance.now();
          const report = await performanceReport(scope, question.input, now);
          if (record) projectMs.push(performance.now() - t);
          answerRows = report.rows.length;
        };
        const runBaseline = async (record: boolean) => {
          const t = performance.now();
          const result = await db.query(baselineSql, baselineParams);
          if (record) baselineMs.push(performance.now() - t);
          baselineRows = result.rows.length;
        };
        for (let i = 0; i < size.warmup; i++) await runProject(false);
        await runBaseline(false);
        timed.timing.transactionMs.length = 0;
        timed.timing.statementMs.length = 0;
        const perBlock = Math.ceil(size.iterations / size.baselineRuns);
        for (let block = 0; block < size.baselineRuns; block++) {
          if (block % 2 === 1) await runBaseline(true);
          for (let i = 0; i < perBlock; i++) await runProject(true);
          if (block % 2 === 0) await runBaseline(true);
        }
        const totalP50 = percentile(projectMs, 0.5);
        const transactionP50 = percentile(timed.timing.transactionMs, 0.5);
        const statementP50 = percentile(timed.timing.statementMs, 0.5);
        const rowsRead = timed.timing.lastRows;
        const sketches = profileSketches(rowsRead, question.input.group_by ?? ['model', 'provider'], question.input.view === 'trend', 20);
        const server = await serverTime(db, scope, timed.timing.lastText, timed.timing.lastParams, 5);
        const p95 = percentile(projectMs, 0.95);
        progress(`query: ${question.label}, ${label}: p95 ${p95.toFixed(2)} ms (baseline p95 ${percentile(baselineMs, 0.95).toFixed(0)} ms)`);
        results.push(
          makeResult({
            name: `metrics: ${question.label}, ${label} (p95)`,
            backend: backend.name,
            value: p95,
            unit: 'ms',
            baseline: percentile(baselineMs, 0.95),
            better: 'lower',
            target: queryP95TargetMs,
            targetOn: 'value',
            notes:
              `performanceReport(${JSON.stringify(question.input)}) as ${label === 'admin, everyone' ? 'admin (service_role, everyone)' : 'one user (authenticated, row-level security)'}, ` +
              `sequential; ${projectMs.length} timed runs after ${size.warmup} warm-up. Data: ${data.calls.toLocaleString('en-US')} raw-equivalent calls ` +
              `(10 users × 4 tools × 3 of 5 models × 1–2 parameter hashes = ${data.groupsPerDay} groups a day, tool and provider rows) as ` +
              `${data.dailyRows.toLocaleString('en-US')} daily roll-up rows over 30 days and ${data.hourlyRows.toLocaleString('en-US')} hourly rows over the last 3 days, ` +
              `the current hour stale with ${data.rawRows.toLocaleString('en-US')} raw calls (so today is answered from hourly rows + raw calls, as in a live system). ` +
              `Baseline (informational): the same question over a plain table of ${size.rawRows.toLocaleString('en-US')} raw calls over the same 30 days ` +
              `(indexes on at and on user_id, at), exact percentile_disc, as the superuser${baselineUser === undefined ? '' : ' filtering on user_id'}, ` +
              `${baselineMs.length} runs interleaved with the project's (LiteLLM's spend logs: 10–30 s at 300K–700K rows). ` +
              `Target: p95 at most ${queryP95TargetMs} ms, absolute.`,
            details: {
              'p50 / p99 (ms)': `${totalP50.toFixed(2)} / ${percentile(projectMs, 0.99).toFixed(2)}`,
              'database: transaction (role switch + statement + commit) p50 (ms)': round3(transactionP50),
              'database: the statement alone (incl. transfer and row parsing) p50 (ms)': round3(statementP50),
              '  of which the server: planning + execution (EXPLAIN ANALYZE, timing off, median of 5) (ms)': `${round3(server.planningMs)} + ${round3(server.executionMs)}`,
              '  = transfer, result parsing, round trip (statement − server; indicative, medians of separate runs) (ms)': round3(
                statementP50 - server.planningMs - server.executionMs,
              ),
              'in JS after the database (grouping, decode, merge, quantiles, rounding) p50 (ms)': round3(totalP50 - transactionP50),
              'rows the statement returned': rowsRead.length,
              'sketches decoded (rows with one)': sketches.sketches,
              'sketch bytes read': sketches.bytes,
              'decode all sketches (ms, median of 20)': round3(sketches.decodeMs),
              'merge them into the answer groups + quantiles (ms, median of 20)': round3(sketches.mergeMs),
              'rows answered': answerRows,
              'baseline: p50 (ms), rows answered': `${percentile(baselineMs, 0.5).toFixed(1)}, ${baselineRows}`,
            },
          }),
        );
      }
    }
    return results;
  } finally {
    await cleanups.run();
    unregister?.();
  }
}

export const metricsBenchmark: Benchmark = {
  id: 'metrics',
  description: 'recording overhead on an MCP tool call, recorder ingest vs raw INSERT, report queries over 10M calls of roll-ups, retention by partition drop vs batched DELETE',
  async run(context) {
    const results: BenchResult[] = [];
    context.progress('metrics: recording overhead');
    results.push(await measureOverhead(context));
    context.progress('metrics: ingest');
    results.push(await measureIngest(context));
    context.progress('metrics: queries');
    results.push(...(await measureQueries(context)));
    context.progress('metrics: retention');
    results.push(await measureRetention(context));
    return results;
  },
};
