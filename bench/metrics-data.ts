/**
 * Synthetic metrics for bench/metrics.ts: users' call groups, model latency
 * profiles, sketches of plausible duration distributions, and the column
 * arrays that insert roll-up rows and raw calls with INSERT … SELECT unnest.
 *
 * Everything is deterministic (a seeded generator), so runs compare.
 */
import type { MetricEvent } from '../src/metrics/event.js';
import { DurationSketch } from '../src/metrics/sketch.js';
import { performanceParamHash } from '../src/metrics/param-hash.js';
import { seededRandom as seeded } from './workload.js';

export { seeded };

/** How one model answers: a log-normal duration (median, spread), tokens and price per call. */
export interface ModelProfile {
  model: string;
  provider: string;
  medianMs: number;
  sigma: number;
  inputTokens: number;
  outputTokens: number;
  usdPerCall: number;
}

export const profiles: readonly ModelProfile[] = [
  { model: 'kimi-k2', provider: 'kimi', medianMs: 2_600, sigma: 0.6, inputTokens: 6_000, outputTokens: 700, usdPerCall: 0.0054 },
  { model: 'kimi-k2-thinking', provider: 'kimi', medianMs: 9_500, sigma: 0.7, inputTokens: 7_000, outputTokens: 2_400, usdPerCall: 0.0102 },
  { model: 'glm-4.6', provider: 'glm', medianMs: 3_200, sigma: 0.55, inputTokens: 6_500, outputTokens: 900, usdPerCall: 0.0047 },
  { model: 'glm-4.5-air', provider: 'glm', medianMs: 1_300, sigma: 0.5, inputTokens: 5_000, outputTokens: 500, usdPerCall: 0.0013 },
  { model: 'qwen2.5-coder:7b', provider: 'openai-compat', medianMs: 850, sigma: 0.4, inputTokens: 4_000, outputTokens: 400, usdPerCall: 0 },
];

/** The tool every user calls, so a comparison "for one tool" has data for each of them. */
export const comparedTool = 'codereview';
const otherTools = ['chat', 'thinkdeep', 'debug', 'analyze', 'planner', 'precommit'];

/** One call group of a day: a user's calls of one tool with one model and one set of parameters. */
export interface CallGroup {
  userId: string;
  apiKeyId: string;
  tool: string;
  profile: ModelProfile;
  paramHash: string;
  /** Light, medium or heavy use (calls scale with it). */
  weight: 1 | 2 | 3;
}

/** Per user: 4 tools (codereview and 3 others) × 3 models × 1–2 parameter settings. */
export function makeGroups(users: readonly { userId: string; apiKeyId: string }[]): CallGroup[] {
  const groups: CallGroup[] = [];
  users.forEach(({ userId, apiKeyId }, u) => {
    const tools = [comparedTool, ...[0, 1, 2].map((k) => otherTools[(u + 2 * k) % otherTools.length]!)];
    const models = [0, 1, 2].map((k) => profiles[(u + k) % profiles.length]!);
    tools.forEach((tool, t) => {
      models.forEach((profile, m) => {
        const hashes = (u + t + m) % 2 === 0 ? 2 : 1;
        for (let h = 0; h < hashes; h++) {
          // As the recorder computes it: the same settings give the same hash whoever calls (defaults, or a temperature of 0.2).
          const paramHash = performanceParamHash({ model: profile.model, temperature: h === 0 ? null : 0.2, thinking: null, webSearch: false, maxTokens: null });
          groups.push({ userId, apiKeyId, tool, profile, paramHash, weight: (1 + ((u + t + m + h) % 3)) as 1 | 2 | 3 });
        }
      });
    });
  });
  return groups;
}

/** A duration in ms: provider calls are log-normal around the model's median; a tool call adds exai's own time. */
export function sampleDuration(profile: ModelProfile, kind: 'tool' | 'provider', random: () => number): number {
  const u1 = Math.max(random(), 1e-12);
  const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * random());
  const provider = profile.medianMs * Math.exp(profile.sigma * z);
  return kind === 'provider' ? provider : provider * 1.02 + 15;
}

/** A stored sketch shape: its bytes and what a roll-up row says about it. */
export interface SketchShape {
  bytes: Buffer;
  count: number;
  sumMs: number;
  minMs: number;
  maxMs: number;
  p50: number;
  p95: number;
  p99: number;
  /** Bins stored (the encoded sketch's length is about this many bytes plus a few). */
  bins: number;
}

/**
 * Sketches of `count` calls, built from up to 256 sampled durations whose
 * integer weights add up to `count`; one per (model, kind, count), reused by
 * every row of that shape, so setting up millions of calls takes a moment.
 */
export class SketchShapes {
  private readonly shapes = new Map<string, SketchShape>();

  get(profile: ModelProfile, kind: 'tool' | 'provider', count: number): SketchShape {
    const key = `${profile.model}|${kind}|${count}`;
    let shape = this.shapes.get(key);
    if (shape === undefined) {
      shape = this.build(profile, kind, count, this.shapes.size + 7);
      this.shapes.set(key, shape);
    }
    return shape;
  }

  get size(): number {
    return this.shapes.size;
  }

  private build(profile: ModelProfile, kind: 'tool' | 'provider', count: number, seed: number): SketchShape {
    const random = seeded(seed);
    const points = Math.max(1, Math.min(count, 256));
    const sketch = DurationSketch.empty();
    let sumMs = 0;
    let minMs = Number.POSITIVE_INFINITY;
    let maxMs = 0;
    for (let i = 0; i < points; i++) {
      const value = sampleDuration(profile, kind, random);
      const weight = Math.floor(count / points) + (i < count % points ? 1 : 0);
      if (weight === 0) continue;
      sketch.add(value, weight);
      sumMs += value * weight;
      minMs = Math.min(minMs, value);
      maxMs = Math.max(maxMs, value);
    }
    const bytes = sketch.encode();
    return { bytes, count, sumMs, minMs, maxMs, p50: sketch.quantile(0.5), p95: sketch.quantile(0.95), p99: sketch.quantile(0.99), bins: bytes.length };
  }
}

/** The roll-up tables' columns in the order `RollupColumns` fills them. */
export function insertRollupSql(table: 'performance_daily' | 'performance_hourly'): string {
  return `INSERT INTO exai.${table}
    (bucket, user_id, api_key_id, kind, tool, model, provider, param_hash, call_count, error_count,
     duration_sum_ms, avg_duration_ms, min_ms, max_ms, p50_ms, p95_ms, p99_ms, ttft_count, ttft_sum_ms,
     input_tokens, output_tokens, cost_usd, sketch)
    SELECT * FROM unnest($1::timestamptz[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
      $8::text[], $9::bigint[], $10::bigint[], $11::float8[], $12::float8[], $13::float8[], $14::float8[],
      $15::float8[], $16::float8[], $17::float8[], $18::bigint[], $19::float8[], $20::bigint[], $21::bigint[],
      $22::float8[], $23::bytea[])`;
}

/** Column arrays for `insertRollupSql`, filled row by row. */
export class RollupColumns {
  private readonly columns: unknown[][] = Array.from({ length: 23 }, () => []);

  get length(): number {
    return this.columns[0]!.length;
  }

  add(bucket: Date, group: CallGroup, kind: 'tool' | 'provider', shape: SketchShape): void {
    const count = shape.count;
    const errors = Math.round(count * 0.01);
    const values: unknown[] = [
      bucket,
      group.userId,
      group.apiKeyId,
      kind,
      group.tool,
      group.profile.model,
      group.profile.provider,
      group.paramHash,
      count,
      errors,
      shape.sumMs,
      shape.sumMs / count,
      shape.minMs,
      shape.maxMs,
      shape.p50,
      shape.p95,
      shape.p99,
      count,
      count * group.profile.medianMs * 0.25,
      count * group.profile.inputTokens,
      count * group.profile.outputTokens,
      count * group.profile.usdPerCall,
      shape.bytes,
    ];
    values.forEach((value, index) => this.columns[index]!.push(value));
  }

  /** The arrays, and a fresh start. */
  take(): unknown[] {
    const taken = this.columns.map((column) => column.splice(0, column.length));
    return taken;
  }
}

/** One raw call of a group, as the recorder would have stored it. */
export function rawEvent(group: CallGroup, kind: 'tool' | 'provider', at: Date, random: () => number): MetricEvent {
  const failed = random() < 0.01;
  const durationMs = sampleDuration(group.profile, kind, random);
  return {
    kind,
    at,
    tool: group.tool,
    model: group.profile.model,
    provider: group.profile.provider,
    paramHash: group.paramHash,
    durationMs,
    timeToFirstTokenMs: durationMs * 0.25,
    inputTokens: group.profile.inputTokens,
    outputTokens: failed ? 0 : group.profile.outputTokens,
    costUsd: group.profile.usdPerCall,
    outcome: failed ? 'error' : 'ok',
    errorClass: failed ? 'http_503' : null,
    userId: group.userId,
    apiKeyId: group.apiKeyId,
    conversationId: null,
  };
}

/** The columns of a raw call, in the order of `rawInsertSql` (the same mapping as the recorder's sink). */
export function rawColumns(events: readonly MetricEvent[]): unknown[] {
  return [
    events.map((e) => e.at),
    events.map((e) => e.kind),
    events.map((e) => e.tool),
    events.map((e) => e.model),
    events.map((e) => e.provider),
    events.map((e) => e.paramHash),
    events.map((e) => e.durationMs),
    events.map((e) => e.timeToFirstTokenMs),
    events.map((e) => e.inputTokens),
    events.map((e) => e.outputTokens),
    events.map((e) => e.costUsd),
    events.map((e) => e.outcome),
    events.map((e) => e.errorClass),
    events.map((e) => e.userId),
    events.map((e) => e.apiKeyId),
    events.map((e) => e.conversationId),
  ];
}

/** A plain multi-row INSERT of raw calls into `table` (no CTE, no stale marks). */
export function rawInsertSql(table: string): string {
  return `INSERT INTO ${table}
    (at, kind, tool, model, provider, param_hash, duration_ms, ttft_ms, input_tokens, output_tokens,
     cost_usd, outcome, error_class, user_id, api_key_id, conversation_id)
  SELECT * FROM unnest(
    $1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[], $8::float8[],
    $9::int[], $10::int[], $11::float8[], $12::text[], $13::text[], $14::uuid[], $15::uuid[], $16::uuid[])`;
}
