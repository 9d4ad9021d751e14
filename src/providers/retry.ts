/** When and how long to wait before trying a provider call again. */
import { APIConnectionError, APIError, APIUserAbortError } from 'openai';

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { maxAttempts: 4, baseDelayMs: 500, maxDelayMs: 20_000 };

const lostConnectionCodes = new Set(['UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNRESET', 'EPIPE']);

/**
 * A connection lost after the response began. The SDK wraps failures of the
 * request itself (APIConnectionError), but one while the body streams comes
 * straight from fetch: a TypeError ('terminated') with the socket error as its cause.
 */
export function isLostConnection(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error.cause as { code?: unknown } | undefined)?.code ?? (error as { code?: unknown }).code;
  return (error instanceof TypeError && error.message === 'terminated') || (typeof code === 'string' && lostConnectionCodes.has(code));
}

/** Rate limits, server errors and lost connections pass; a bad request will fail again. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof APIUserAbortError) return false;
  if (error instanceof APIConnectionError || isLostConnection(error)) return true;
  if (error instanceof APIError) return error.status === 408 || error.status === 409 || error.status === 429 || (error.status ?? 0) >= 500;
  return false;
}

/** Retry-After as seconds or an HTTP date, in milliseconds; undefined when absent or unreadable. */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  const milliseconds = headers?.get('retry-after-ms');
  if (milliseconds != null && /^\d+(\.\d+)?$/.test(milliseconds)) return Math.ceil(Number(milliseconds));
  const value = headers?.get('retry-after');
  if (value == null) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.ceil(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * The wait before attempt `attempt + 1` (attempt counts from 1): what the
 * server asked for when it said, else exponential backoff, half of it random (jitter), so clients that failed together do not retry together.
 */
export function retryDelayMs(attempt: number, error: unknown, policy: RetryPolicy, random = Math.random): number {
  const asked = error instanceof APIError ? retryAfterMs(error.headers) : undefined;
  if (asked !== undefined) return Math.min(asked, policy.maxDelayMs);
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** A short name for the kind of failure, for call records and messages. */
export function errorClass(error: unknown): string {
  if (error instanceof APIError && error.status !== undefined) return error.status === 429 ? 'rate_limited' : `http_${error.status}`;
  if (error instanceof APIConnectionError || isLostConnection(error)) return 'network';
  return 'error';
}
