/**
 * Writes recorded calls to `exai.performance_metrics` and marks their hours
 * stale for the roll-ups, in one transaction as the service: a batch is either
 * stored and marked, or neither. Day partitions are created on first use.
 */
import type { Database, Queryable } from '../db/types.js';
import { asService, isUuid } from '../db/session.js';
import type { MetricEvent } from './event.js';
import type { MetricsSink } from './recorder.js';
import { rawRetentionDays, utcDay } from './buckets.js';

// The batch travels as one JSON text: JSON.stringify is native and the server parses it in C,
// where binding sixteen arrays would cost the calling process ~25 µs of JavaScript per event.
const insertSql = `
WITH inserted AS (
  INSERT INTO exai.performance_metrics
    (at, kind, tool, model, provider, param_hash, duration_ms, ttft_ms, input_tokens, output_tokens,
     cost_usd, outcome, error_class, user_id, api_key_id, conversation_id)
  SELECT at, kind, tool, model, provider, param_hash, duration_ms, ttft_ms, input_tokens, output_tokens,
         cost_usd, outcome, error_class, user_id, api_key_id, conversation_id
    FROM json_to_recordset($1::json) AS e(
      at timestamptz, kind text, tool text, model text, provider text, param_hash text, duration_ms float8,
      ttft_ms float8, input_tokens int, output_tokens int, cost_usd float8, outcome text, error_class text,
      user_id uuid, api_key_id uuid, conversation_id uuid)
  RETURNING at
)
INSERT INTO exai.rollup_pending (level, bucket)
SELECT DISTINCT 'hour', date_trunc('hour', at, 'UTC') FROM inserted
ON CONFLICT (level, bucket) DO UPDATE SET version = nextval('exai.rollup_version_seq')`;

function batchJson(events: MetricEvent[]): string {
  return JSON.stringify(
    events.map((e) => ({
      at: e.at.toISOString(),
      kind: e.kind,
      tool: e.tool,
      model: e.model,
      provider: e.provider,
      param_hash: e.paramHash,
      duration_ms: e.durationMs,
      ttft_ms: e.timeToFirstTokenMs,
      input_tokens: e.inputTokens,
      output_tokens: e.outputTokens,
      cost_usd: e.costUsd,
      outcome: e.outcome,
      error_class: e.errorClass,
      user_id: e.userId,
      api_key_id: e.apiKeyId,
      conversation_id: e.conversationId,
    })),
  );
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

  /** Resolves to how many events were refused as invalid; throws when the database could not be written. */
  async write(events: MetricEvent[]): Promise<number> {
    // Older than the raw retention, a call could only land in a dropped partition.
    const oldest = this.now() - rawRetentionDays * 86_400_000;
    const kept = events.map(fitted).filter((event): event is MetricEvent => event !== undefined && event.at.getTime() >= oldest);
    const refused = events.length - kept.length;
    if (kept.length === 0) return refused;
    return refused + (await this.insertOrSplit(kept));
  }

  /**
   * One bad event must not keep a whole batch (and every batch behind it) out:
   * on a data error the batch is split until the bad events are found and left out.
   */
  private async insertOrSplit(events: MetricEvent[]): Promise<number> {
    try {
      await this.insertWithPartitions(events);
      return 0;
    } catch (error) {
      if (!isDataError(error)) throw error;
      if (events.length === 1) return 1;
      const half = Math.ceil(events.length / 2);
      return (await this.insertOrSplit(events.slice(0, half))) + (await this.insertOrSplit(events.slice(half)));
    }
  }

  private async insertWithPartitions(events: MetricEvent[]): Promise<void> {
    try {
      await this.insert(events);
    } catch (error) {
      if (!isMissingPartition(error)) throw error;
      this.knownDays.clear();
      await this.insert(events);
    }
  }

  private async insert(events: MetricEvent[]): Promise<void> {
    const days = new Set(events.map((event) => utcDay(event.at)));
    const missing = [...days].filter((day) => !this.knownDays.has(day));
    await asService(this.db, async (tx) => {
      await ensureMetricsPartitions(tx, missing);
      await tx.query(insertSql, [batchJson(events)]);
    });
    for (const day of missing) this.knownDays.add(day);
  }
}

const clip = (text: string | null, length: number) => (text === null ? null : text.slice(0, length));
const count = (value: number) => (Number.isFinite(value) ? Math.min(Math.max(0, Math.round(value)), 2_147_483_647) : 0);
const uuidOrNull = (value: string | null) => (value !== null && isUuid(value) ? value : null);

/** The event within the columns' limits, or undefined when it cannot be stored (no time, no duration). */
function fitted(event: MetricEvent): MetricEvent | undefined {
  if (!Number.isFinite(event.at.getTime()) || !Number.isFinite(event.durationMs) || !/^[0-9a-f]{16}$/.test(event.paramHash)) return undefined;
  const ttft = event.timeToFirstTokenMs;
  return {
    ...event,
    tool: clip(event.tool, 100),
    model: clip(event.model, 200),
    provider: clip(event.provider, 100),
    errorClass: clip(event.errorClass, 100),
    durationMs: Math.max(0, event.durationMs),
    timeToFirstTokenMs: ttft === null || !Number.isFinite(ttft) ? null : Math.max(0, ttft),
    inputTokens: count(event.inputTokens),
    outputTokens: count(event.outputTokens),
    costUsd: event.costUsd === null || !Number.isFinite(event.costUsd) || event.costUsd < 0 ? null : event.costUsd,
    userId: uuidOrNull(event.userId),
    apiKeyId: uuidOrNull(event.apiKeyId),
    conversationId: uuidOrNull(event.conversationId),
  };
}

/** SQLSTATE classes 22 (data exception) and 23 (integrity constraint): the rows, not the database, are at fault. */
function isDataError(error: unknown): boolean {
  const code = (error as { cause?: { code?: unknown } }).cause?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23')) && !isMissingPartition(error);
}

function isMissingPartition(error: unknown): boolean {
  const text = error instanceof Error ? `${error.message} ${String((error as { cause?: unknown }).cause ?? '')}` : '';
  return /no partition of relation/i.test(text);
}
