import { APIConnectionError, APIError } from 'openai';
import { describe, expect, it } from 'vitest';
import { errorClass, isRetryable, retryAfterMs, retryDelayMs } from '../../src/providers/retry.js';

const policy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1000 };
const httpError = (status: number, headers: Record<string, string> = {}) => APIError.generate(status, { error: { message: 'x' } }, undefined, new Headers(headers));

describe('retry policy', () => {
  it('reads Retry-After as seconds, milliseconds or an HTTP date', () => {
    expect(retryAfterMs(new Headers({ 'retry-after': '2' }))).toBe(2000);
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '150' }))).toBe(150);
    const now = Date.parse('2026-11-26T12:00:00Z');
    expect(retryAfterMs(new Headers({ 'retry-after': 'Thu, 26 Nov 2026 12:00:03 GMT' }), now)).toBe(3000);
    expect(retryAfterMs(new Headers({ 'retry-after': 'soon' }))).toBeUndefined();
    expect(retryAfterMs(new Headers())).toBeUndefined();
  });

  it('waits what the server asked, capped, else a jittered exponential backoff', () => {
    expect(retryDelayMs(1, httpError(429, { 'retry-after': '0.5' }), policy)).toBe(500);
    expect(retryDelayMs(1, httpError(429, { 'retry-after': '60' }), policy)).toBe(1000);
    expect(retryDelayMs(1, httpError(503), policy, () => 0)).toBe(50);
    expect(retryDelayMs(1, httpError(503), policy, () => 1)).toBe(100);
    expect(retryDelayMs(3, httpError(503), policy, () => 0)).toBe(200);
    expect(retryDelayMs(10, httpError(503), policy, () => 1)).toBe(1000);
  });

  it('retries rate limits, server errors and network failures, not bad requests', () => {
    expect(isRetryable(httpError(429))).toBe(true);
    expect(isRetryable(httpError(502))).toBe(true);
    expect(isRetryable(new APIConnectionError({ message: 'reset' }))).toBe(true);
    expect(isRetryable(httpError(400))).toBe(false);
    expect(isRetryable(httpError(401))).toBe(false);
    expect(isRetryable(new Error('bug'))).toBe(false);
    expect([errorClass(httpError(429)), errorClass(httpError(503)), errorClass(new APIConnectionError({ message: 'x' }))]).toEqual([
      'rate_limited',
      'http_503',
      'network',
    ]);
  });
});
