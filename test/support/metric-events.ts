/**
 * Recorded calls with known distributions, for the metrics suites: the same
 * events every run (a seeded generator), the exact percentile a sketch
 * approximates, and the 1% check.
 */
import { expect } from 'vitest';
import { hourMs } from '../../src/metrics/buckets.js';
import type { MetricEvent } from '../../src/metrics/event.js';
import { seededRandom } from '../../bench/workload.js';

export { seededRandom };

/** SQL's percentile_disc: the smallest value with at least q·n values at or below it; what a sketch's quantile approximates. */
export function exactQuantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

export function expectWithin1Percent(actual: number, exact: number, what: string): void {
  expect(Math.abs(actual - exact) / exact, `${what}: ${actual} vs exact ${exact}`).toBeLessThanOrEqual(0.01);
}

/** Log-normal, bimodal and uniform durations: averaging their percentiles would be far off on each. */
export const testModels = [
  { model: 'kimi-k2-0905-preview', provider: 'kimi', draw: (r: () => number) => Math.exp(6 + 0.8 * Math.sqrt(-2 * Math.log(r() || 1e-9)) * Math.cos(2 * Math.PI * r())) },
  { model: 'glm-4.6', provider: 'glm', draw: (r: () => number) => (r() < 0.9 ? 200 + r() * 100 : 5_000 + r() * 5_000) },
  { model: 'glm-4.5-flash', provider: 'glm', draw: (r: () => number) => 50 + r() * 950 },
];

/**
 * `perHour` provider calls in each hour starting at `hourStarts`, cycling over
 * the first `modelCount` test models; 5% fail; glm-4.6 has no known price.
 */
export function makeEvents(userId: string, seed: number, perHour: number, hourStarts: number[], modelCount = testModels.length): MetricEvent[] {
  const r = seededRandom(seed);
  const events: MetricEvent[] = [];
  for (const start of hourStarts) {
    for (let i = 0; i < perHour; i += 1) {
      const { model, provider, draw } = testModels[i % modelCount]!;
      const failed = r() < 0.05;
      events.push({
        kind: 'provider',
        at: new Date(start + Math.floor(r() * (hourMs - 1))),
        tool: i % 2 === 0 ? 'chat' : 'codereview',
        model,
        provider,
        paramHash: '00112233445566ff',
        durationMs: draw(r),
        timeToFirstTokenMs: 40,
        inputTokens: 100 + (i % 7),
        outputTokens: 20 + (i % 5),
        costUsd: model === 'glm-4.6' ? null : 0.001 * (1 + (i % 3)),
        outcome: failed ? 'error' : 'ok',
        errorClass: failed ? 'http_503' : null,
        userId,
        apiKeyId: null,
        conversationId: null,
      });
    }
  }
  return events;
}
