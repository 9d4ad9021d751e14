/**
 * One record per provider call. The metrics recorder stores them durably;
 * MemoryCallRecorder keeps the latest in memory, bounded, for listmodels.
 */
import type { PerformanceParams } from '../metrics/param-hash.js';

export type CallOutcome = 'ok' | 'error' | 'timeout' | 'cancelled';

export interface CallRecord {
  at: string;
  provider: string;
  model: string;
  tool: string | null;
  /** The user the call was made for; null for calls outside a user's request. */
  userId: string | null;
  durationMs: number;
  timeToFirstTokenMs: number | null;
  inputTokens: number | null;
  outputTokens: number | null;
  outcome: CallOutcome;
  /** A short class such as `rate_limited`, `http_503`, `network`; null when ok. */
  errorClass: string | null;
  attempts: number;
  /** The settings that change how the model performs (see performanceParamHash). */
  params: PerformanceParams;
  /** The API key the call was made with, when it was a key. */
  apiKeyId: string | null;
}

export interface CallRecorder {
  record(call: CallRecord): void;
}

export class MemoryCallRecorder implements CallRecorder {
  private readonly calls: CallRecord[] = [];

  constructor(private readonly capacity = 1000) {}

  record(call: CallRecord): void {
    this.calls.push(call);
    if (this.calls.length > this.capacity) this.calls.splice(0, this.calls.length - this.capacity);
  }

  /** The latest records, oldest first; only one user's when `userId` is given. */
  recent(limit = this.capacity, userId?: string): CallRecord[] {
    const calls = userId === undefined ? this.calls : this.calls.filter((call) => call.userId === userId);
    return calls.slice(-limit);
  }
}
