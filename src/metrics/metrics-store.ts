/**
 * Writes recorded calls to `exai.performance_metrics` and marks their hours
 * stale for the roll-ups, in one transaction as the service: a batch is either
 * stored and marked, or neither. Day partitions are created on first use.
 */
import type { Database, Queryable } from '../db/types.js';
import { asService } from '../db/session.js';
import type { MetricEvent } from './event.js';
import type { MetricsSink } from './recorder.js';
import { rawRetentionDays, utcDay } from './buckets.js';

const insertSql = `
WITH inserted AS (
  INSERT INTO exai.performance_metrics
    (at, kind, tool, model, provider, param_hash, duration_ms, ttft_ms, input_tokens, output_tokens,
     cost_usd, outcome, error_class, user_id, api_key_id, conversation_id)
  SELECT * FROM unnest(
    $1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[], $8::float8[],
    $9::int[], $10::int[], $11::float8[], $12::text[], $13::text[], $14::uuid[], $15::uuid[], $16::uuid[])
  RETURNING at
)
INSERT INTO exai.rollup_pending (level, bucket)
SELECT DISTINCT 'hour', date_trunc('hour', at, 'UTC') FROM inserted
ON CONFLICT (level, bucket) DO UPDATE SET version = nextval('exai.rollup_version_seq')`;

function columns(events: MetricEvent[]): unknown[] {
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

/** Creates the partitions for these UTC days (`YYYY-MM-DD`) where missing. */
export async function ensureMetricsPartitions(tx: Queryable, days: Iterable<string>): Promise<void> {
  for (const day of days) await tx.query('SELECT exai.ensure_metrics_partition($1::date)', [day]);
}

export class DatabaseMetricsSink implements MetricsSink {
  /** Days whose partition this process made sure of; retention may drop one, which a retry handles. */
  private readonly knownDays = new Set<string>();

  constructor(
    private readonly db: Database,
    private readonly now: () => number = Date.now,
  ) {}

  async write(events: MetricEvent[]): Promise<void> {
    // Older than the raw retention, a call could only land in a dropped partition.
    const oldest = this.now() - rawRetentionDays * 86_400_000;
    const kept = events.filter((event) => event.at.getTime() >= oldest);
    if (kept.length === 0) return;
    try {
      await this.insert(kept);
    } catch (error) {
      if (!isMissingPartition(error)) throw error;
      this.knownDays.clear();
      await this.insert(kept);
    }
  }

  private async insert(events: MetricEvent[]): Promise<void> {
    const days = new Set(events.map((event) => utcDay(event.at)));
    const missing = [...days].filter((day) => !this.knownDays.has(day));
    await asService(this.db, async (tx) => {
      await ensureMetricsPartitions(tx, missing);
      await tx.query(insertSql, columns(events));
    });
    for (const day of missing) this.knownDays.add(day);
  }
}

function isMissingPartition(error: unknown): boolean {
  const text = error instanceof Error ? `${error.message} ${String((error as { cause?: unknown }).cause ?? '')}` : '';
  return /no partition of relation/i.test(text);
}
