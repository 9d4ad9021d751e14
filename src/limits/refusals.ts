/**
 * The errors a refused call gets: what happened, what to do, and `retry_after_s`.
 * They name limits, never the subject, which may be a key id (and must never be a key).
 */
import { ExaiError } from '../errors.js';

/** A slot frees when some call finishes, which nobody can predict; this is a polite interval to try again. */
const concurrencyRetryAfterS = 1;

export function retryAfterSeconds(msBeforeReset: number): number {
  return Math.max(1, Math.ceil(msBeforeReset / 1000));
}

function refusal(message: string, retryAfterS: number): ExaiError {
  return new ExaiError('rate_limited', message, { details: { retry_after_s: retryAfterS } });
}

export function requestLimitReached(limit: number, msBeforeReset: number): ExaiError {
  const after = retryAfterSeconds(msBeforeReset);
  return refusal(`Rate limit reached: ${limit} requests per minute for this key. Retry after ${after} s.`, after);
}

export function tokenBudgetReached(limit: number, msBeforeReset: number): ExaiError {
  const after = retryAfterSeconds(msBeforeReset);
  return refusal(`Token budget reached: ${limit} model tokens per minute for this key. Retry after ${after} s.`, after);
}

export function tooManyCalls(limit: number): ExaiError {
  return refusal(`Too many calls in flight for this key (limit ${limit}); wait for one to finish.`, concurrencyRetryAfterS);
}

export function tooManyProviderCalls(provider: string, limit: number): ExaiError {
  return refusal(
    `Too many calls in flight to ${provider} across all exai instances (limit ${limit}); wait for one to finish or choose another model.`,
    concurrencyRetryAfterS,
  );
}
