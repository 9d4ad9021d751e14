/** One recorded call: a tool call as the client saw it, or one provider call within it. */
export type MetricKind = 'tool' | 'provider';
export type MetricOutcome = 'ok' | 'error' | 'timeout' | 'cancelled';

export interface MetricEvent {
  kind: MetricKind;
  /** When the call started. */
  at: Date;
  tool: string | null;
  model: string | null;
  provider: string | null;
  /** See performanceParamHash: calls made the same way share it. */
  paramHash: string;
  durationMs: number;
  timeToFirstTokenMs: number | null;
  inputTokens: number;
  outputTokens: number;
  /** US dollars from the registry's prices; null when a price is unknown. */
  costUsd: number | null;
  outcome: MetricOutcome;
  /** A short class such as `rate_limited` or `http_503`; null when ok. */
  errorClass: string | null;
  userId: string | null;
  apiKeyId: string | null;
  conversationId: string | null;
}
