/** Alert rules: validated from config, evaluated exactly over raw calls, recorded once per change. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { evaluateAlerts } from '../../src/metrics/alerts.js';
import { alertRules, type AlertRule } from '../../src/metrics/alert-rules.js';
import type { MetricEvent } from '../../src/metrics/event.js';
import { DatabaseMetricsSink } from '../../src/metrics/metrics-store.js';
import { storageBackends, silentLogger, type TestDatabase } from '../support/backends.js';

describe('alert rules in EXAI_ALERT_RULES', () => {
  it('are read as JSON with defaults', () => {
    const config = loadConfig({ EXAI_ALERT_RULES: '[{"name":"slow","metric":"p95_ms","above":2000,"model":"glm-4.6"}]' });
    expect(config.metrics.alertRules).toEqual([
      { name: 'slow', metric: 'p95_ms', above: 2000, model: 'glm-4.6', window: '15m', min_calls: 10, kind: 'provider' },
    ]);
    expect(loadConfig({}).metrics.alertRules).toEqual([]);
  });

  it.each([
    ['not json', /EXAI_ALERT_RULES: must be a JSON array of rules/],
    ['[{"name":"x","metric":"p42","above":1}]', /at 0\.metric/],
    ['[{"name":"x","metric":"p95_ms","above":1,"window":"3d"}]', /at 0\.window: a window from 1m to 24h/],
    ['[{"name":"x","metric":"p95_ms","above":-1}]', /at 0\.above/],
    ['[{"name":"x","metric":"p95_ms","above":1,"colour":"red"}]', /at 0: Unrecognized key/i],
    ['[{"name":"x","metric":"p95_ms","above":1},{"name":"x","metric":"error_rate","above":0.1}]', /"x" is used twice/],
    ['[{"name":"x","metric":"error_rate","above":5}]', /at 0\.above: an error_rate is a fraction from 0 to 1/],
  ])('refuses %s with a message naming the problem', (text, message) => {
    expect(() => loadConfig({ EXAI_ALERT_RULES: text })).toThrow(message);
  });
});

function event(at: number, durationMs: number, outcome: MetricEvent['outcome'] = 'ok'): MetricEvent {
  return {
    kind: 'provider', at: new Date(at), tool: 'chat', model: 'glm-4.6', provider: 'glm', paramHash: '0123456789abcdef',
    durationMs, timeToFirstTokenMs: null, inputTokens: 1, outputTokens: 1, costUsd: 0.01, outcome,
    errorClass: outcome === 'ok' ? null : 'http_503', userId: randomUUID(), apiKeyId: null, conversationId: null,
  };
}

for (const backend of storageBackends()) {
  describe(`alert evaluation on ${backend.name}`, () => {
    let database: TestDatabase;
    const now = Date.now();
    const rules: AlertRule[] = alertRules.parse([
      { name: 'glm-slow', metric: 'p95_ms', above: 900, model: 'glm-4.6' },
      { name: 'glm-failing', metric: 'error_rate', above: 0.2, model: 'glm-4.6' },
      { name: 'spend', metric: 'cost_usd', above: 0.5, window: '1h' },
      { name: 'kimi-slow', metric: 'p95_ms', above: 1, model: 'kimi-k2-0905-preview' },
    ]);

    beforeAll(async () => {
      database = await backend.createDatabase();
      // 100 calls in the last 10 minutes: 94 fast, 6 slow (exact p95 = 1000 ms), 10 failed.
      const events = Array.from({ length: 100 }, (_, i) => event(now - 600_000 + i * 5_000, i < 94 ? 100 + i : 1000, i % 10 === 0 ? 'error' : 'ok'));
      await new DatabaseMetricsSink(database.db).write(events);
    });

    afterAll(async () => {
      await database?.destroy();
    });

    async function events() {
      return (await database.db.query<{ rule: string; state: string; observed: number }>('SELECT rule, state, observed FROM exai.alert_events ORDER BY id')).rows;
    }

    it('fires the rules whose figure is over the threshold, and records each change once', async () => {
      const states = await evaluateAlerts(database.db, rules, silentLogger, now);
      expect(states.map(({ rule, firing, observed, changed }) => ({ rule, firing, observed, changed }))).toEqual([
        { rule: 'glm-slow', firing: true, observed: 1000, changed: true },
        { rule: 'glm-failing', firing: false, observed: 0.1, changed: false },
        { rule: 'spend', firing: true, observed: expect.closeTo(1, 9), changed: true },
        // No kimi calls: nothing to judge, so it does not fire.
        { rule: 'kimi-slow', firing: false, observed: null, changed: false },
      ]);
      await evaluateAlerts(database.db, rules, silentLogger, now + 1_000);
      expect(await events()).toEqual([
        { rule: 'glm-slow', state: 'firing', observed: 1000 },
        { rule: 'spend', state: 'firing', observed: expect.closeTo(1, 9) },
      ]);
    });

    it('resolves a rule once its window no longer shows the problem', async () => {
      const later = await evaluateAlerts(database.db, rules, silentLogger, now + 2 * 3_600_000);
      expect(later.filter((state) => state.changed).map((state) => state.rule)).toEqual(['glm-slow', 'spend']);
      expect((await events()).slice(2)).toEqual([
        { rule: 'glm-slow', state: 'resolved', observed: null },
        { rule: 'spend', state: 'resolved', observed: 0 },
      ]);
    });

    it('resolves a firing rule once it is taken out of the configuration', async () => {
      await evaluateAlerts(database.db, rules, silentLogger, now + 3_000);
      expect((await events()).slice(4).map(({ rule, state }) => ({ rule, state }))).toEqual([
        { rule: 'glm-slow', state: 'firing' },
        { rule: 'spend', state: 'firing' },
      ]);
      await evaluateAlerts(database.db, rules.filter((rule) => rule.name !== 'spend'), silentLogger, now + 4_000);
      const removed = await database.db.query<{ rule: string; state: string; details: { reason: string } }>(
        'SELECT rule, state, details FROM exai.alert_events ORDER BY id DESC LIMIT 1',
      );
      expect(removed.rows[0]).toEqual({ rule: 'spend', state: 'resolved', details: { reason: 'the rule is no longer in EXAI_ALERT_RULES' } });
      // Nothing more to resolve on the next run.
      await evaluateAlerts(database.db, [], silentLogger, now + 5_000);
      expect((await events()).filter((event) => event.rule === 'spend').at(-1)!.state).toBe('resolved');
      expect((await events()).filter((event) => event.rule === 'glm-slow').at(-1)!.state).toBe('resolved');
    });
  });
}
