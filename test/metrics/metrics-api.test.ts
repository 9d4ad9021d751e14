/**
 * `/api/v1/metrics/…` on a running exai with authentication required, on both
 * backends: calls of two users are recorded, then each user's key with
 * `metrics:read` sees exactly their own numbers, an admin key sees everyone's,
 * a key without the scope gets 403 and no credential 401 (with the challenge
 * of the protected-resource metadata); bad or unknown query parameters get a
 * 400 naming them; trends answer per bucket; usage totals are exact.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MetricEvent } from '../../src/metrics/event.js';
import { DatabaseMetricsSink } from '../../src/metrics/metrics-store.js';
import type { PerformanceReport, UsageReport } from '../../src/metrics/reports.js';
import { hourMs } from '../../src/metrics/buckets.js';
import { storageBackends } from '../support/backends.js';
import { createApiKey } from '../../src/auth/api-keys.js';
import { startAuthExai, type AuthExai } from '../support/auth-server.js';
import { ownerApi } from '../support/cli.js';
import { exactQuantile, seededRandom } from '../support/metric-events.js';


const pricedModels = [
  { model: 'kimi-k2-0905-preview', provider: 'kimi', cost: 0.002 },
  { model: 'glm-4.6', provider: 'glm', cost: 0.001 },
  { model: 'glm-4.5-flash', provider: 'glm', cost: 0.0005 },
];

function makeEvents(userId: string, seed: number, count: number, hourStarts: number[], models: typeof pricedModels): MetricEvent[] {
  const r = seededRandom(seed);
  return Array.from({ length: count }, (_, i): MetricEvent => {
    const { model, provider, cost } = models[i % models.length]!;
    const failed = r() < 0.1;
    return {
      kind: 'provider',
      at: new Date(hourStarts[Math.floor(r() * hourStarts.length)]! + Math.floor(r() * (hourMs - 1))),
      tool: i % 3 === 0 ? 'codereview' : 'chat',
      model,
      provider,
      paramHash: '0011223344556677',
      durationMs: 100 + r() * 2_000,
      timeToFirstTokenMs: 30,
      inputTokens: 200 + (i % 11),
      outputTokens: 50 + (i % 7),
      costUsd: cost,
      outcome: failed ? 'error' : 'ok',
      errorClass: failed ? 'http_500' : null,
      userId,
      apiKeyId: null,
      conversationId: null,
    };
  });
}

const sum = (events: MetricEvent[], field: 'inputTokens' | 'outputTokens' | 'costUsd') => events.reduce((total, event) => total + (event[field] ?? 0), 0);
const ofModel = (events: MetricEvent[], model: string) => events.filter((event) => event.model === model);

interface Answer<T> {
  status: number;
  body: T;
  headers: Headers;
}

for (const backend of storageBackends()) {
  describe(`/api/v1/metrics on ${backend.name}`, () => {
    let exai: AuthExai;
    let alice: { userId: string; key: string };
    let bob: { userId: string; key: string };
    let admin: { userId: string; key: string };
    let noMetrics: { userId: string; key: string };
    const currentHour = Math.floor(Date.now() / hourMs) * hourMs;
    // Two full hours before this one: a trend has two buckets, and no call lies in the future.
    const hours = [currentHour - 2 * hourMs, currentHour - hourMs];
    let aliceEvents: MetricEvent[];
    let bobEvents: MetricEvent[];

    async function get<T>(path: string, key: string | undefined): Promise<Answer<T>> {
      const response = await exai.raw(path, { headers: key === undefined ? {} : { authorization: `Bearer ${key}` } });
      return { status: response.status, body: JSON.parse(response.text) as T, headers: response.headers };
    }

    async function ok<T>(path: string, key: string): Promise<T> {
      const answer = await get<T>(path, key);
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      expect(answer.headers.get('cache-control')).toBe('private, no-store');
      return answer.body;
    }

    beforeAll(async () => {
      exai = await startAuthExai(backend, {});
      alice = await exai.userWithKey('alice', ['metrics:read']);
      bob = await exai.userWithKey('bob', ['metrics:read', 'tools:call']);
      admin = await exai.userWithKey('ops', ['admin']);
      noMetrics = await exai.userWithKey('carol', ['tools:call', 'conversations:read']);
      aliceEvents = makeEvents(alice.userId, 1, 400, hours, pricedModels.slice(0, 2));
      bobEvents = makeEvents(bob.userId, 2, 150, [hours[1]!], pricedModels.slice(1));
      // A call of nobody's (no user): counted for the admin, never shown to a user.
      const orphan = makeEvents(randomUUID(), 3, 10, [hours[1]!], pricedModels.slice(0, 1)).map((event) => ({ ...event, userId: null }));
      await new DatabaseMetricsSink(exai.server.services.db).write([...aliceEvents, ...bobEvents, ...orphan]);
      bobEvents.push(...orphan.map((event) => ({ ...event, userId: 'orphan' })));
    }, 120_000);

    afterAll(async () => {
      await exai?.close();
    });

    it('shows a user key with metrics:read only its own calls, counts and costs exact, p95 within 1%', async () => {
      const report = await ok<PerformanceReport>('/api/v1/metrics/performance?since=6h&group_by=model', alice.key);
      expect(report).toMatchObject({ view: 'summary', resolution: 'hour' });
      expect(report.rows.map((row) => row.model).sort()).toEqual(['glm-4.6', 'kimi-k2-0905-preview']);
      for (const row of report.rows) {
        const mine = ofModel(aliceEvents, row.model!);
        expect(row.call_count).toBe(mine.length);
        expect(row.error_count).toBe(mine.filter((event) => event.outcome === 'error').length);
        expect(row.input_tokens).toBe(sum(mine, 'inputTokens'));
        expect(row.cost_usd).toBeCloseTo(sum(mine, 'costUsd'), 6);
        const exact = exactQuantile(mine.map((event) => event.durationMs), 0.95);
        expect(Math.abs(row.p95_ms - exact) / exact).toBeLessThanOrEqual(0.01);
      }
      const byUser = await ok<PerformanceReport>('/api/v1/metrics/performance?since=6h&group_by=user_id', bob.key);
      expect(byUser.rows).toEqual([expect.objectContaining({ user_id: bob.userId, call_count: 150 })]);
    });

    it('shows an admin key everyone\u2019s calls', async () => {
      const report = await ok<PerformanceReport>('/api/v1/metrics/performance?since=6h&group_by=model,provider', admin.key);
      expect(report.rows.map((row) => [row.model, row.provider]).sort()).toEqual(pricedModels.map(({ model, provider }) => [model, provider]).sort());
      const everyone = [...aliceEvents, ...bobEvents];
      for (const row of report.rows) expect(row.call_count, row.model!).toBe(ofModel(everyone, row.model!).length);
      const users = await ok<PerformanceReport>('/api/v1/metrics/performance?group_by=user_id', admin.key);
      expect(users.rows.map((row) => [row.user_id, row.call_count]).sort()).toEqual(
        [
          [alice.userId, 400],
          [bob.userId, 150],
          [null, 10],
        ].sort(),
      );
    });

    it('answers trends per bucket, and the bottlenecks and compare views by their paths', async () => {
      const report = await ok<PerformanceReport>('/api/v1/metrics/trends?since=6h&bucket=hour&model=glm-4.6', alice.key);
      expect(report.view).toBe('trend');
      expect(report.rows.map((row) => row.bucket)).toEqual(hours.map((at) => new Date(at).toISOString()));
      for (const [index, row] of report.rows.entries()) {
        const inHour = ofModel(aliceEvents, 'glm-4.6').filter((event) => event.at.getTime() >= hours[index]! && event.at.getTime() < hours[index]! + hourMs);
        expect(row.call_count).toBe(inHour.length);
      }

      // With only `to`, the range is the day before it: here the earlier hour alone.
      const before = await ok<PerformanceReport>(`/api/v1/metrics/performance?to=${encodeURIComponent(new Date(hours[1]!).toISOString())}&group_by=model`, alice.key);
      expect(before.from).toBe(new Date(hours[1]! - 24 * hourMs).toISOString());
      expect(before.rows.reduce((total, row) => total + row.call_count, 0)).toBe(aliceEvents.filter((event) => event.at.getTime() < hours[1]!).length);

      const worst = await ok<PerformanceReport>('/api/v1/metrics/bottlenecks?since=6h&sort=calls&limit=1&group_by=model', admin.key);
      expect(worst.view).toBe('bottlenecks');
      expect(worst.rows).toHaveLength(1);
      expect(worst.rows[0]).toMatchObject({ model: 'glm-4.6', call_count: ofModel([...aliceEvents, ...bobEvents], 'glm-4.6').length });

      const compared = await ok<PerformanceReport>('/api/v1/metrics/compare?since=6h&tool=chat', admin.key);
      expect(compared.view).toBe('compare');
      expect(compared.rows).toHaveLength(3);
      const p95s = compared.rows.map((row) => row.p95_ms);
      expect(p95s).toEqual([...p95s].sort((a, b) => a - b));
    });

    it('totals usage exactly, by default over the current month', async () => {
      const mine = await ok<UsageReport>('/api/v1/metrics/usage?since=6h', alice.key);
      expect(mine.totals).toEqual({
        call_count: aliceEvents.length,
        error_count: aliceEvents.filter((event) => event.outcome === 'error').length,
        input_tokens: sum(aliceEvents, 'inputTokens'),
        output_tokens: sum(aliceEvents, 'outputTokens'),
        cost_usd: expect.closeTo(sum(aliceEvents, 'costUsd'), 6),
      });
      const month = await ok<UsageReport>('/api/v1/metrics/usage?group_by=model,day', admin.key);
      const now = new Date();
      const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
      expect(month.from).toBe(new Date(monthStart).toISOString());
      const inMonth = [...aliceEvents, ...bobEvents].filter((event) => event.at.getTime() >= monthStart);
      expect(month.totals.call_count).toBe(inMonth.length);
      expect(month.totals.cost_usd).toBeCloseTo(sum(inMonth, 'costUsd'), 6);
      expect(month.rows.every((row) => /^\d{4}-\d{2}-\d{2}$/.test(row.day!))).toBe(true);
    });

    it('refuses a key without metrics:read (403) and a request without credentials (401)', async () => {
      const forbidden = await get<{ error: { code: string; message: string } }>('/api/v1/metrics/usage', noMetrics.key);
      expect(forbidden.status).toBe(403);
      expect(forbidden.body.error).toEqual({ code: 'forbidden', message: 'This credential lacks the scope metrics:read.' });
      expect(forbidden.headers.get('www-authenticate')).toContain('error="insufficient_scope"');

      for (const path of ['/api/v1/metrics/performance', '/api/v1/metrics/trends', '/api/v1/metrics/compare', '/api/v1/metrics/bottlenecks', '/api/v1/metrics/usage']) {
        const anonymous = await get<{ error: { code: string } }>(`${path}?since=yesterday`, undefined);
        expect(anonymous.status, path).toBe(401);
        expect(anonymous.body.error.code).toBe('unauthorized');
        const metadataUrl = /resource_metadata="([^"]+)"/.exec(anonymous.headers.get('www-authenticate') ?? '')?.[1];
        expect(metadataUrl).toBe(`${exai.url}/.well-known/oauth-protected-resource${path}`);
        const metadata = await fetch(metadataUrl!);
        expect(metadata.status).toBe(200);
        expect(((await metadata.json()) as { resource: string }).resource).toBe(`${exai.url}${path}`);
      }
    });

    it('counts requests against the key\u2019s limit: over it, 429 with Retry-After', async () => {
      const limited = await createApiKey(
        exai.server.services.db,
        { userId: alice.userId, scopes: ['metrics:read'], limits: { requestsPerMinute: 2 } },
        { userId: alice.userId, label: 'test', source: 'test' },
      );
      await ok('/api/v1/metrics/usage', limited.key);
      await ok('/api/v1/metrics/performance', limited.key);
      const refused = await get<{ error: { code: string; retry_after_s: number } }>('/api/v1/metrics/usage', limited.key);
      expect(refused.status).toBe(429);
      expect(refused.body.error.code).toBe('rate_limited');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    });

    it('refuses bad and unknown parameters with a 400 naming them and what they accept', async () => {
      const cases: [string, RegExp][] = [
        ['/performance?since=yesterday', /^since must be a span back from to \(default now\) such as 30m, 24h, 7d or 2w .*\(got "yesterday"\)\.$/],
        ['/performance?since=9999d', /^since must be a span .*at most 2 years\) \(got "9999d"\)\.$/],
        ['/bottlenecks?sort=fastest', /^sort must be one of p95, p99, error_rate, cost, calls \(got "fastest"\)\.$/],
        ['/performance?view=fastest', /^view must be one of summary, trend, compare, bottlenecks \(got "fastest"\)\.$/],
        ['/performance?group_by=model,color', /^group_by must be a comma-separated list of tool, model, provider, kind, param_hash, user_id, api_key_id \(got "color"\)\.$/],
        ['/trends?since=6h&bucket=hour&group_by=', /^group_by must be a comma-separated list/],
        ['/usage?group_by=kind', /^group_by must be a comma-separated list of model, provider, tool, user_id, api_key_id, day \(got "kind"\)\.$/],
        ['/performance?limit=0', /^limit must be a whole number from 1 to 1000 \(got "0"\)\.$/],
        ['/performance?limit=ten', /^limit must be a whole number from 1 to 1000 \(got "ten"\)\.$/],
        ['/performance?kind=model', /^kind must be provider or tool \(got "model"\)\.$/],
        ['/trends?bucket=week', /^bucket must be hour or day \(got "week"\)\.$/],
        ['/performance?from=last%20monday', /^from must be an ISO 8601 time such as 2026-11-01T00:00:00Z/],
        ['/performance?since=1h&since=2h', /^since is given 2 times; give it once\.$/],
        ['/performance?colour=red&since=1h', /^Unknown parameter colour; the parameters are view, since, from, to, kind, tool, model, provider, bucket, group_by, sort, limit\.$/],
        ['/trends?view=summary', /^Unknown parameter view; the parameters are since, from, to, kind, tool, model, provider, bucket, group_by, sort, limit\.$/],
        ['/usage?kind=tool', /^Unknown parameter kind; the parameters are since, from, to, model, provider, group_by, limit\.$/],
        ['/performance?from=2026-01-02&to=2026-01-01', /^The range is empty: from 2026-01-02T00:00:00\.000Z is not before to 2026-01-01T00:00:00\.000Z/],
      ];
      const answers = await Promise.all(cases.map(([path]) => get<{ error: { code: string; message: string } }>(`/api/v1/metrics${path}`, alice.key)));
      answers.forEach((answer, index) => {
        const [path, message] = cases[index]!;
        expect(answer.status, path).toBe(400);
        expect(answer.body.error.code, path).toBe('invalid_argument');
        expect(answer.body.error.message, path).toMatch(message);
      });
    });

    it('answers the operator through the owner\u2019s internal API as the CLI calls it', async () => {
      const { status, body } = await ownerApi<PerformanceReport>(exai.config.home, 'POST', '/admin/stats.performance', { input: { since: '6h', group_by: ['model'], user: 'bob' } });
      expect(status).toBe(200);
      expect(body.rows.map((row) => [row.model, row.call_count]).sort()).toEqual([
        ['glm-4.5-flash', 75],
        ['glm-4.6', 75],
      ]);
      const refused = await ownerApi<{ error: { code: string; message: string } }>(exai.config.home, 'POST', '/admin/stats.usage', { input: { since: 'soon' } });
      expect(refused.status).toBe(400);
      expect(refused.body.error.message).toMatch(/^Invalid input for stats\.usage: since: a span such as 30m, 24h, 7d or 4w/);
    });

    it('rebuilds a window of roll-ups on the operator\u2019s request, audited, and refuses windows it cannot rebuild', async () => {
      const from = new Date(hours[0]!).toISOString();
      const before = await ok<PerformanceReport>('/api/v1/metrics/performance?since=6h&group_by=model', admin.key);
      const rebuilt = await ownerApi<{ hours_marked: number; hours_rebuilt: number }>(exai.config.home, 'POST', '/admin/stats.rebuild', { input: { from } });
      expect(rebuilt.status).toBe(200);
      expect(rebuilt.body.hours_marked).toBeGreaterThanOrEqual(2);
      expect(rebuilt.body.hours_rebuilt).toBe(rebuilt.body.hours_marked);
      expect((await ok<PerformanceReport>('/api/v1/metrics/performance?since=6h&group_by=model', admin.key)).rows).toEqual(before.rows);
      const audit = await exai.rows('audit_log');
      expect(audit.some((row) => row.action === 'metrics.rebuild' && String(row.target).startsWith(from))).toBe(true);
      const tooOld = await ownerApi<{ error: { message: string } }>(exai.config.home, 'POST', '/admin/stats.rebuild', { input: { from: '2020-01-01T00:00:00Z' } });
      expect(tooOld.status).toBe(400);
      expect(tooOld.body.error.message).toMatch(/Only the last 90 days can be rebuilt/);
    });
  });
}
