/**
 * The benchmark harness: the result type, timing helpers that measure the
 * project's path and its baseline in the same process (interleaved, so drift
 * hits both alike), the table on stdout and `bench/results/latest.json`.
 *
 * Every figure is a pair: the project's path and a baseline that does the same
 * work the plainest way (raw SQL as the superuser, a raw cache GET). The ratio
 * is always project / baseline in the figure's own unit:
 * - throughput (unit ends in "/s"): higher is better, pass = ratio >= target;
 * - time (µs, ms): lower is better, pass = ratio <= target.
 * A figure whose target is an added cost (the MCP overhead: at most 1 ms more
 * than a bare server) sets `target_on: 'difference'`: then the target bounds
 * project − baseline, in the figure's unit, and the ratio is informational.
 * A figure whose target is absolute (a query's p95 at most 50 ms, whatever the
 * baseline takes) sets `target_on: 'value'`: the target bounds the project's
 * value itself, and the ratio is informational.
 * A ratio target may also accept a small added cost (recording: at most 2%
 * *or* at most 50 µs more): `or_difference` bounds project − baseline, and the
 * figure passes when either bound holds.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Cache } from '../src/cache/types.js';
import type { ConversationStore } from '../src/conversations/store.js';
import type { Database, Queryable, QueryResult, Row } from '../src/db/types.js';
import type { Logger } from '../src/logger.js';

/** One line of `latest.json`. */
export interface BenchResult {
  name: string;
  backend: string;
  value: number;
  unit: string;
  baseline_value: number;
  /** project / baseline. */
  ratio: number;
  /** Minimum ratio for throughput, maximum ratio for time; null when the figure is informational. */
  target: number | null;
  /** null when there is no target. */
  pass: boolean | null;
  /** What exactly was measured, the baseline, and anything worth knowing to read the figure. */
  notes: string;
  /**
   * Set to 'difference' when `target` bounds project − baseline (in `unit`) instead of the ratio,
   * to 'value' when it bounds the project's value itself (an absolute target).
   */
  target_on?: 'difference' | 'value';
  /** With a ratio target: the figure also passes when project − baseline is within this bound (in `unit`). */
  or_difference?: number;
  /** project − baseline, in `unit`; present on figures with target_on 'difference' or an or_difference. */
  difference?: number;
  /** Further measurements that explain the figure (such as where the time goes), by name. */
  details?: Record<string, number | string>;
}

export type Better = 'higher' | 'lower';

/** A storage backend as the benchmarks see it: a migrated database, its cache and a store over both. */
export interface BenchBackend {
  /** `pglite+memory` or `postgres+redis`. */
  name: string;
  db: Database;
  cache: Cache;
  store: ConversationStore;
  /** Builds another store over the same database and cache (a benchmark may wrap the database to count). */
  createStore(db: Database): ConversationStore;
  /** A plain Redis client and the bench's key prefix, for raw baselines (postgres+redis only). */
  redis?: { get(key: string): Promise<string | null>; set(key: string, value: string): Promise<unknown> };
  redisPrefix?: string;
  close(): Promise<void>;
}

export interface BenchContext {
  backend: BenchBackend;
  quick: boolean;
  logger: Logger;
  /** A progress line on stderr. */
  progress(message: string): void;
  /**
   * Registers a cleanup to run if the bench is interrupted (Ctrl-C) while this
   * benchmark runs, such as stopping a process it started; returns the function
   * that unregisters it once the benchmark has cleaned up by itself.
   */
  registerCleanup?(cleanup: () => Promise<void>): () => void;
}

/** One file under bench/ exports one of these; bench/run.ts lists them. */
export interface Benchmark {
  id: string;
  description: string;
  run(context: BenchContext): Promise<BenchResult[]>;
}

function round(value: number): number {
  if (!Number.isFinite(value)) return value;
  const magnitude = Math.abs(value);
  const digits = magnitude >= 100 ? 1 : magnitude >= 1 ? 2 : 4;
  return Number(value.toFixed(digits));
}

export function makeResult(input: {
  name: string;
  backend: string;
  value: number;
  unit: string;
  baseline: number;
  better: Better;
  target: number | null;
  notes: string;
  /** 'difference': the target bounds value − baseline rather than the ratio; 'value': it bounds the value itself. */
  targetOn?: 'ratio' | 'difference' | 'value';
  /** With a ratio target: also pass when value − baseline is within this bound ("≤ 2% or ≤ 50 µs more"). */
  orDifference?: number;
  details?: Record<string, number | string>;
}): BenchResult {
  const ratio = input.value / input.baseline;
  const difference = input.value - input.baseline;
  const measure = input.targetOn === 'difference' ? difference : input.targetOn === 'value' ? input.value : ratio;
  const within = (measured: number, bound: number) => (input.better === 'higher' ? measured >= bound : measured <= bound);
  const orDifference = input.targetOn === undefined || input.targetOn === 'ratio' ? input.orDifference : undefined;
  const pass =
    input.target === null ? null : within(measure, input.target) || (orDifference !== undefined && within(difference, orDifference));
  const result: BenchResult = {
    name: input.name,
    backend: input.backend,
    value: round(input.value),
    unit: input.unit,
    baseline_value: round(input.baseline),
    ratio: Number(ratio.toFixed(3)),
    target: input.target,
    pass,
    notes: input.notes,
  };
  if (input.targetOn === 'difference' || input.targetOn === 'value') result.target_on = input.targetOn;
  if (orDifference !== undefined) result.or_difference = orDifference;
  if (input.targetOn === 'difference' || orDifference !== undefined) result.difference = round(difference);
  if (input.details !== undefined) result.details = input.details;
  return result;
}

/** Throughput units end in "/s"; everything else is a time. */
export function betterFor(unit: string): Better {
  return unit.endsWith('/s') ? 'higher' : 'lower';
}

/** Calls made on a database, to check what a path did (a cache hit must not touch it) or how it batched. */
export interface DatabaseCounts {
  transactions: number;
  queries: number;
  execs: number;
}

/** A database that counts what it is asked to do; one more function call per operation. */
export function countingDatabase(db: Database): { db: Database; counts: DatabaseCounts } {
  const counts: DatabaseCounts = { transactions: 0, queries: 0, execs: 0 };
  const counted: Database = {
    kind: db.kind,
    query: <R = Row>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> => {
      counts.queries++;
      return db.query<R>(text, params);
    },
    exec: (script: string) => {
      counts.execs++;
      return db.exec(script);
    },
    transaction: <T>(fn: (tx: Queryable) => Promise<T>): Promise<T> => {
      counts.transactions++;
      return db.transaction(fn);
    },
    maintenance: (statement) => db.maintenance(statement),
    ping: () => db.ping(),
    close: () => db.close(),
  };
  return { db: counted, counts };
}

// Timing ---------------------------------------------------------------------

export interface Round {
  /** Operations completed (rows, turns, …). */
  ops: number;
  ms: number;
}

/**
 * Runs `writers` concurrent loops of `step` until `durationMs` has passed;
 * each step returns how many operations it completed. The round ends when the
 * last step in flight at the deadline finishes, and that time counts.
 */
export async function runForDuration(
  writers: number,
  durationMs: number,
  step: (writer: number, iteration: number) => Promise<number>,
): Promise<Round> {
  const start = performance.now();
  const deadline = start + durationMs;
  let ops = 0;
  await Promise.all(
    Array.from({ length: writers }, async (_, writer) => {
      for (let iteration = 0; performance.now() < deadline; iteration++) {
        // Not `ops += await step()`: that reads `ops` before the await and loses the other writers' counts.
        const done = await step(writer, iteration);
        ops += done;
      }
    }),
  );
  return { ops, ms: performance.now() - start };
}

export interface ThroughputComparison {
  /** Operations per second over all measured rounds. */
  project: number;
  baseline: number;
  projectRounds: Round[];
  baselineRounds: Round[];
}

function rate(rounds: Round[]): number {
  const ops = rounds.reduce((sum, r) => sum + r.ops, 0);
  const ms = rounds.reduce((sum, r) => sum + r.ms, 0);
  return (ops / ms) * 1000;
}

/**
 * Warms both sides up, then alternates measured rounds (P B, B P, P B, …) so
 * that neither side always runs on a warmer or fuller database.
 */
export async function compareThroughput(options: {
  warmupMs: number;
  roundMs: number;
  rounds: number;
  project: (durationMs: number) => Promise<Round>;
  baseline: (durationMs: number) => Promise<Round>;
}): Promise<ThroughputComparison> {
  await options.project(options.warmupMs);
  await options.baseline(options.warmupMs);
  const projectRounds: Round[] = [];
  const baselineRounds: Round[] = [];
  for (let round = 0; round < options.rounds; round++) {
    if (round % 2 === 0) {
      projectRounds.push(await options.project(options.roundMs));
      baselineRounds.push(await options.baseline(options.roundMs));
    } else {
      baselineRounds.push(await options.baseline(options.roundMs));
      projectRounds.push(await options.project(options.roundMs));
    }
  }
  return { project: rate(projectRounds), baseline: rate(baselineRounds), projectRounds, baselineRounds };
}

export interface LatencyStats {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
}

export function latencyStats(samplesUs: number[]): LatencyStats {
  const sorted = [...samplesUs].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return {
    count: sorted.length,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    mean: sorted.reduce((sum, v) => sum + v, 0) / sorted.length,
  };
}

export interface TimedOp {
  /** Untimed preparation before each operation (such as dropping a cache entry). */
  before?: () => Promise<void>;
  op: () => Promise<unknown>;
}

/**
 * Latency of one operation at a time, in µs: a warm-up, then `blocks`
 * alternating blocks of each side, every operation timed on its own.
 */
export async function compareLatency(options: {
  warmup: number;
  iterations: number;
  blocks: number;
  project: TimedOp;
  baseline: TimedOp;
}): Promise<{ project: LatencyStats; baseline: LatencyStats }> {
  const runBlock = async (side: TimedOp, count: number, into?: number[]) => {
    for (let i = 0; i < count; i++) {
      if (side.before !== undefined) await side.before();
      const start = performance.now();
      await side.op();
      const elapsed = (performance.now() - start) * 1000;
      into?.push(elapsed);
    }
  };
  await runBlock(options.project, options.warmup);
  await runBlock(options.baseline, options.warmup);
  const project: number[] = [];
  const baseline: number[] = [];
  const perBlock = Math.max(1, Math.ceil(options.iterations / options.blocks));
  for (let block = 0; block < options.blocks; block++) {
    if (block % 2 === 0) {
      await runBlock(options.project, perBlock, project);
      await runBlock(options.baseline, perBlock, baseline);
    } else {
      await runBlock(options.baseline, perBlock, baseline);
      await runBlock(options.project, perBlock, project);
    }
  }
  return { project: latencyStats(project), baseline: latencyStats(baseline) };
}

// Output ---------------------------------------------------------------------

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude >= 1000) return Math.round(value).toLocaleString('en-US');
  if (magnitude >= 100) return value.toFixed(0);
  if (magnitude >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function formatTarget(result: BenchResult): string {
  if (result.target === null) return '-';
  const comparison = betterFor(result.unit) === 'higher' ? '>=' : '<=';
  if (result.target_on === 'difference') return `diff ${comparison} ${result.target} ${result.unit}`;
  if (result.target_on === 'value') return `value ${comparison} ${result.target} ${result.unit}`;
  const orDifference = result.or_difference === undefined ? '' : ` or diff ${comparison} ${result.or_difference} ${result.unit}`;
  return `${comparison} ${result.target}${orDifference}`;
}

export function formatTable(results: BenchResult[]): string {
  // The diff column (project − baseline) appears only when a figure has one.
  const withDiff = results.some((r) => r.difference !== undefined);
  const header = ['name', 'backend', 'value', 'unit', 'baseline', 'ratio', ...(withDiff ? ['diff'] : []), 'target', 'pass'];
  const rows = results.map((r) => [
    r.name,
    r.backend,
    formatNumber(r.value),
    r.unit,
    formatNumber(r.baseline_value),
    r.ratio.toFixed(2),
    ...(withDiff ? [r.difference === undefined ? '-' : `${r.difference >= 0 ? '+' : ''}${formatNumber(r.difference)}`] : []),
    formatTarget(r),
    r.pass === null ? '-' : r.pass ? 'PASS' : 'MISS',
  ]);
  const numeric = new Set(withDiff ? [2, 4, 5, 6] : [2, 4, 5]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n') + '\n';
}

/** The details of the figures that have some, one block per figure (empty when none has). */
export function formatDetails(results: BenchResult[]): string {
  const blocks = results
    .filter((r) => r.details !== undefined && Object.keys(r.details).length > 0)
    .map((r) => {
      const entries = Object.entries(r.details!);
      const width = Math.max(...entries.map(([key]) => key.length));
      const lines = entries.map(([key, value]) => `  ${key.padEnd(width)}  ${typeof value === 'number' ? formatNumber(value) : value}`);
      return [`${r.name} [${r.backend}]:`, ...lines].join('\n');
    });
  return blocks.length === 0 ? '' : blocks.join('\n') + '\n';
}

/** How a missed figure compares with its target, for the summary line. */
export function describeMiss(result: BenchResult): string {
  if (result.target_on === 'difference') {
    return `${result.name} [${result.backend}] diff ${result.difference} ${result.unit} vs target ${result.target} ${result.unit}`;
  }
  if (result.target_on === 'value') return `${result.name} [${result.backend}] ${result.value} ${result.unit} vs target ${result.target} ${result.unit}`;
  const orDifference = result.or_difference === undefined ? '' : ` (diff ${result.difference} ${result.unit} vs ${result.or_difference} ${result.unit})`;
  return `${result.name} [${result.backend}] ratio ${result.ratio} vs target ${result.target}${orDifference}`;
}

export function missedTargets(results: BenchResult[]): BenchResult[] {
  return results.filter((r) => r.pass === false);
}

/** The project root: the nearest folder above this file holding package.json (works from bench/ and dist/bench/). */
export function projectRoot(): string {
  let folder = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(folder, 'package.json'))) return folder;
    const parent = path.dirname(folder);
    if (parent === folder) throw new Error('cannot find the project root (package.json) above bench/');
    folder = parent;
  }
}

export function writeResults(results: BenchResult[], file = path.join(projectRoot(), 'bench', 'results', 'latest.json')): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
  return file;
}
