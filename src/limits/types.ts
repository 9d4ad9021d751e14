/** What one subject (an API key or a user) may do. Each limit counts only when it is at least 1; 0 means unlimited. */
export interface LimitSettings {
  requestsPerMinute: number; // 0 = unlimited
  tokensPerMinute: number; // model tokens (in+out) per minute, 0 = unlimited
  concurrentCalls: number; // 0 = unlimited
}

export interface CallPermit {
  /** After the model answered: charge tokens against the per-minute token budget. */
  chargeTokens(tokens: number): Promise<void>;
  /** Always call once (finally): frees the concurrency slot. Idempotent. */
  release(): Promise<void>;
}

/** Counts run in fixed one-minute windows that start with a subject's first use. */
export const windowSeconds = 60;

/** A limit as a count, or undefined when it does not apply (0, negative or not a number means unlimited). */
export function effectiveLimit(value: number): number | undefined {
  if (!(value >= 1)) return undefined;
  return Number.isFinite(value) ? Math.floor(value) : undefined;
}
