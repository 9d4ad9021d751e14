/**
 * Prometheus at GET /metrics: real tool calls over MCP against the fake
 * provider show up as exactly that many provider calls, the fake's token
 * counts and the registry's price; the endpoint asks for `metrics:scrape`;
 * label values stay bounded whatever the callers send; a failing queue-depth
 * source does not fail the scrape.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CountingCache } from '../../src/cache/counting.js';
import { MemoryCache } from '../../src/cache/memory.js';
import type { MetricEvent } from '../../src/metrics/event.js';
import { PrometheusMetrics } from '../../src/metrics/prometheus.js';
import { ModelRegistry } from '../../src/providers/registry.js';
import { toolNames } from '../../src/tools/names.js';
import { storageBackends } from '../support/backends.js';
import { startAuthExai, textOf, type AuthExai } from '../support/auth-server.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { captureLogs } from '../support/logs.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a text exposition. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the sample with exactly these labels; 0 when it does not exist (yet). */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels);
  const found = samples.filter((sample) => sample.name === name && Object.keys(sample.labels).length === wanted.length && wanted.every(([key, value]) => sample.labels[key] === value));
  expect(found.length, `${name} ${JSON.stringify(labels)}`).toBeLessThanOrEqual(1);
  return found[0]?.value ?? 0;
}

/** Distinct label sets of a metric (a histogram's buckets of one series count once). */
function seriesOf(samples: Sample[], name: string): Record<string, string>[] {
  const seen = new Map<string, Record<string, string>>();
  for (const sample of samples) {
    if (sample.name !== name && sample.name !== `${name}_count`) continue;
    seen.set(JSON.stringify(Object.entries(sample.labels).sort()), sample.labels);
  }
  return [...seen.values()];
}

function event(overrides: Partial<MetricEvent>): MetricEvent {
  return {
    kind: 'provider',
    at: new Date(),
    tool: 'chat',
    model: 'glm-4.6',
    provider: 'glm',
    paramHash: 'x',
    durationMs: 1200,
    timeToFirstTokenMs: 300,
    inputTokens: 10,
    outputTokens: 5,
    costUsd: 0.001,
    outcome: 'ok',
    errorClass: null,
    userId: null,
    apiKeyId: null,
    conversationId: null,
    ...overrides,
  };
}

describe('PrometheusMetrics', () => {
  const models = ['glm-4.6', 'kimi-k2-0905-preview'];

  it('keeps every label bounded when fed 10,000 distinct models, tools, providers, error classes, routes and queues', async () => {
    const prometheus = new PrometheusMetrics({ logger: captureLogs().logger, models, defaultMetrics: false });
    for (let index = 0; index < 10_000; index += 1) {
      const model = `model-${index}`;
      const errorClass = `error_${index}`;
      prometheus.observe(event({ kind: 'provider', model, provider: `provider-${index}`, outcome: 'error', errorClass }));
      prometheus.observe(event({ kind: 'tool', tool: `tool-${index}`, model, outcome: index % 2 === 0 ? 'error' : ('weird' as MetricEvent['outcome']), errorClass: `${errorClass} with a message: ${index}` }));
      prometheus.observeHttp({ method: `VERB${index}`, route: `/route/${index}`, statusCode: 100 + (index % 700), seconds: 0.01 });
    }
    prometheus.setQueueDepthSource(async () => Object.fromEntries(Array.from({ length: 10_000 }, (_, index) => [`queue-${index}`, 1])));
    const samples = parseExposition(await prometheus.metrics());

    const provider = seriesOf(samples, 'exai_provider_call_duration_seconds');
    expect(provider).toEqual([{ provider: 'other', model: 'other', outcome: 'error' }]);
    expect(seriesOf(samples, 'exai_tokens_total')).toHaveLength(2);
    expect(valueOf(samples, 'exai_tokens_total', { provider: 'other', model: 'other', direction: 'input' })).toBe(100_000);
    expect(seriesOf(samples, 'exai_tool_call_duration_seconds').map((labels) => labels.tool)).toEqual(['other', 'other']);
    // The first 50 well-formed classes keep their names; free text and everything later is `other`.
    const errors = seriesOf(samples, 'exai_errors_total');
    expect(errors.length).toBeLessThanOrEqual(2 * 51);
    expect(new Set(errors.map((labels) => labels.error_class)).size).toBe(51);
    expect(valueOf(samples, 'exai_errors_total', { kind: 'tool', error_class: 'other' })).toBe(10_000);
    const http = seriesOf(samples, 'exai_http_request_duration_seconds');
    expect(http.length).toBeLessThanOrEqual(101 * 6);
    expect(new Set(http.map((labels) => labels.method))).toEqual(new Set(['other']));
    expect(new Set(http.map((labels) => labels.status_class))).toEqual(new Set(['1xx', '2xx', '3xx', '4xx', '5xx', 'other']));
    const queues = seriesOf(samples, 'exai_job_queue_depth');
    expect(queues.length).toBe(51);
    expect(valueOf(samples, 'exai_job_queue_depth', { queue: 'other' })).toBe(10_000 - 50);
    expect(samples.length).toBeLessThan(20_000);
  });

  it('counts known names under their own labels', async () => {
    const prometheus = new PrometheusMetrics({ logger: captureLogs().logger, models, defaultMetrics: false });
    prometheus.observe(event({ model: 'GLM-4.6', inputTokens: 7, outputTokens: 3, costUsd: 0.25 }));
    prometheus.observe(event({ kind: 'tool', tool: 'codereview' }));
    prometheus.observeHttp({ method: 'POST', route: '/mcp', statusCode: 200, seconds: 0.2 });
    prometheus.observeHttp({ method: 'GET', route: undefined, statusCode: 404, seconds: 0.001 });
    const samples = parseExposition(await prometheus.metrics());
    expect(valueOf(samples, 'exai_provider_call_duration_seconds_count', { provider: 'glm', model: 'glm-4.6', outcome: 'ok' })).toBe(1);
    expect(valueOf(samples, 'exai_provider_time_to_first_token_seconds_count', { provider: 'glm', model: 'glm-4.6' })).toBe(1);
    expect(valueOf(samples, 'exai_tokens_total', { provider: 'glm', model: 'glm-4.6', direction: 'output' })).toBe(3);
    expect(valueOf(samples, 'exai_cost_usd_total', { provider: 'glm', model: 'glm-4.6' })).toBe(0.25);
    expect(valueOf(samples, 'exai_tool_call_duration_seconds_count', { tool: 'codereview', outcome: 'ok' })).toBe(1);
    expect(valueOf(samples, 'exai_http_request_duration_seconds_count', { method: 'POST', route: '/mcp', status_class: '2xx' })).toBe(1);
    expect(valueOf(samples, 'exai_http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status_class: '4xx' })).toBe(1);
    expect(toolNames).toContain('codereview');
  });

  it('scrapes without queue depths when their source throws, rejects or hangs, and warns', async () => {
    const logs = captureLogs();
    const prometheus = new PrometheusMetrics({ logger: logs.logger, models, queueDepthTimeoutMs: 50, recorder: { stats: () => ({ buffered: 3, written: 9, dropped: 2, rejected: 4, failedFlushes: 1 }) } });
    const sources = [
      () => {
        throw new Error('the job runner is gone');
      },
      async () => {
        throw new Error('pg-boss is down');
      },
      () => new Promise<Record<string, number>>(() => undefined),
    ];
    for (const source of sources) {
      prometheus.setQueueDepthSource(source);
      const samples = parseExposition(await prometheus.metrics());
      expect(seriesOf(samples, 'exai_job_queue_depth')).toEqual([]);
      expect(valueOf(samples, 'exai_metrics_buffered')).toBe(3);
      expect(valueOf(samples, 'exai_metrics_dropped_total')).toBe(2);
      expect(valueOf(samples, 'exai_metrics_rejected_total')).toBe(4);
      expect(samples.some((sample) => sample.name === 'exai_process_resident_memory_bytes' || sample.name === 'exai_nodejs_heap_size_used_bytes')).toBe(true);
    }
    expect(logs.lines().filter((line) => String(line.msg).includes('job queue depths could not be read'))).toHaveLength(1);

    prometheus.setQueueDepthSource(async () => ({ summaries: 4, embeddings: 0 }));
    const samples = parseExposition(await prometheus.metrics());
    expect(valueOf(samples, 'exai_job_queue_depth', { queue: 'summaries' })).toBe(4);
    expect(valueOf(samples, 'exai_job_queue_depth', { queue: 'embeddings' })).toBe(0);
  });

  it('owns its registry: several instances live side by side in one process', async () => {
    const first = new PrometheusMetrics({ logger: captureLogs().logger, models });
    const second = new PrometheusMetrics({ logger: captureLogs().logger, models });
    first.observe(event({}));
    expect(valueOf(parseExposition(await first.metrics()), 'exai_provider_call_duration_seconds_count', { provider: 'glm', model: 'glm-4.6', outcome: 'ok' })).toBe(1);
    expect(valueOf(parseExposition(await second.metrics()), 'exai_provider_call_duration_seconds_count', { provider: 'glm', model: 'glm-4.6', outcome: 'ok' })).toBe(0);
  });
});

describe('CountingCache', () => {
  it('counts reads that found something as hits and the others as misses', async () => {
    const cache = new CountingCache(new MemoryCache({ maxEntries: 100, maxBytes: 1_000_000 }));
    expect(await cache.get('a')).toBeUndefined();
    await cache.set('a', 'value', 60_000);
    expect(await cache.get('a')).toBe('value');
    expect(await cache.getLog('thread')).toBeUndefined();
    expect(await cache.fillLog('thread', { head: 'h', entries: ['1'] }, 60_000)).toBe(true);
    expect(await cache.getLog('thread')).toEqual({ head: 'h', entries: ['1'] });
    // An announced append hides the log: the reader goes to the database, a miss.
    const token = await cache.beginAppend('thread');
    expect(await cache.getLog('thread')).toBeUndefined();
    expect(await cache.appendLog('thread', 1, ['2'], 60_000, token)).toBe('appended');
    expect(await cache.getLog('thread')).toEqual({ head: 'h', entries: ['1', '2'] });
    expect(cache.counts()).toEqual({ hits: 3, misses: 3 });
    expect(cache.backend).toBe('memory');
    expect(cache.health().status).toBe('ok');
    await cache.close();
  });
});

describe.each(storageBackends())('GET /metrics on $name', (backend) => {
  const model = 'kimi-k2-0905-preview';
  const usage = { prompt_tokens: 1234, completion_tokens: 567 };
  let fake: FakeOpenAI;
  let exai: AuthExai;
  let reader: string;
  let caller: string;
  let defaultKey: string;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    exai = await startAuthExai(backend, { KIMI_API_KEY: 'sk-kimi-metrics-0123456789', KIMI_BASE_URL: fake.baseUrl });
    // Every user may read their own numbers; the instance's totals need metrics:scrape.
    reader = (await exai.userWithKey('metrics-reader', ['metrics:scrape'])).key;
    defaultKey = (await exai.userWithKey('metrics-user')).key;
    caller = (await exai.userWithKey('metrics-caller', ['tools:call', 'conversations:read', 'conversations:write'])).key;
  });

  afterAll(async () => {
    await exai?.close();
    await fake?.close();
  });

  async function scrape(): Promise<Sample[]> {
    const response = await exai.raw('/metrics', { headers: { authorization: `Bearer ${reader}` } });
    expect(response.status, response.text).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return parseExposition(response.text);
  }

  it('asks for credentials, refuses keys without metrics:scrape (a default key too) and serves one with it', async () => {
    const anonymous = await exai.raw('/metrics');
    expect(anonymous.status).toBe(401);
    const challenge = anonymous.headers.get('www-authenticate') ?? '';
    expect(challenge).toContain('scope="metrics:scrape"');
    const metadataUrl = /resource_metadata="([^"]+)"/.exec(challenge)![1]!;
    expect(metadataUrl).toBe(`${exai.url}/.well-known/oauth-protected-resource/metrics`);
    expect((await exai.raw(new URL(metadataUrl).pathname)).status).toBe(200);

    const forbidden = await exai.raw('/metrics', { headers: { authorization: `Bearer ${caller}` } });
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    expect(forbidden.text).not.toContain('exai_');
    // A key made without --scopes reads its own stats but not every user's totals.
    const ordinary = await exai.raw('/metrics', { headers: { authorization: `Bearer ${defaultKey}` } });
    expect(ordinary.status).toBe(403);

    const samples = await scrape();
    expect(samples.some((sample) => sample.name === 'exai_metrics_buffered')).toBe(true);
    expect(samples.some((sample) => sample.name.startsWith('exai_process_') || sample.name.startsWith('exai_nodejs_'))).toBe(true);
  });

  it('counts tool calls, provider calls, tokens and cost exactly as they happened', async () => {
    const calls = 3;
    const before = await scrape();
    const requestsBefore = fake.requests.length;
    const session = await exai.connect(caller);
    let continuation: string | undefined;
    for (let index = 0; index < calls; index += 1) {
      fake.script({ kind: 'answer', content: `Answer ${index}.`, usage });
      const result = await session.call('chat', {
        prompt: `Question ${index}?`,
        model,
        use_websearch: false,
        ...(continuation === undefined ? {} : { continuation_id: continuation }),
      });
      expect(result.isError, textOf(result)).toBeFalsy();
      continuation = (result.structuredContent as { continuation_id: string }).continuation_id;
    }
    expect(fake.requests.length - requestsBefore).toBe(calls);
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string>) => valueOf(after, name, labels) - valueOf(before, name, labels);

    const series = { provider: 'kimi', model };
    expect(delta('exai_provider_call_duration_seconds_count', { ...series, outcome: 'ok' })).toBe(calls);
    expect(delta('exai_provider_time_to_first_token_seconds_count', series)).toBe(calls);
    expect(delta('exai_tool_call_duration_seconds_count', { tool: 'chat', outcome: 'ok' })).toBe(calls);
    expect(delta('exai_tokens_total', { ...series, direction: 'input' })).toBe(calls * usage.prompt_tokens);
    expect(delta('exai_tokens_total', { ...series, direction: 'output' })).toBe(calls * usage.completion_tokens);
    const info = exai.server.services.router.registry.find(model)!;
    const price = ModelRegistry.cost(info, usage.prompt_tokens, usage.completion_tokens)!;
    expect(price).toBeGreaterThan(0);
    expect(delta('exai_cost_usd_total', series)).toBeCloseTo(calls * price, 9);
    // Each MCP request is timed under the route's pattern.
    expect(delta('exai_http_request_duration_seconds_count', { method: 'POST', route: '/mcp', status_class: '2xx' })).toBeGreaterThanOrEqual(calls);
    // The continued calls read the thread through the cache.
    const reads = (samples: Sample[]) => valueOf(samples, 'exai_cache_hits_total') + valueOf(samples, 'exai_cache_misses_total');
    expect(reads(after) - reads(before)).toBeGreaterThanOrEqual(calls - 1);
  });

  it('counts a failed model call as a provider and a tool error', async () => {
    const before = await scrape();
    const session = await exai.connect(caller);
    fake.script({ kind: 'error', status: 400, body: { error: { message: 'bad request', type: 'invalid_request_error' } } });
    const result = await session.call('chat', { prompt: 'Fail, please.', model, use_websearch: false });
    expect(result.isError).toBe(true);
    const after = await scrape();
    const sum = (samples: Sample[], kind: string) =>
      samples.filter((sample) => sample.name === 'exai_errors_total' && sample.labels.kind === kind).reduce((total, sample) => total + sample.value, 0);
    expect(sum(after, 'provider') - sum(before, 'provider')).toBe(1);
    expect(sum(after, 'tool') - sum(before, 'tool')).toBe(1);
    expect(valueOf(after, 'exai_provider_call_duration_seconds_count', { provider: 'kimi', model, outcome: 'error' })).toBe(
      valueOf(before, 'exai_provider_call_duration_seconds_count', { provider: 'kimi', model, outcome: 'error' }) + 1,
    );
  });

  it('labels unknown routes as unmatched, never by their URL', async () => {
    const before = await scrape();
    for (let index = 0; index < 5; index += 1) expect((await exai.raw(`/no-such-page-${index}?x=${index}`)).status).toBe(404);
    const after = await scrape();
    expect(
      valueOf(after, 'exai_http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status_class: '4xx' }) -
        valueOf(before, 'exai_http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status_class: '4xx' }),
    ).toBe(5);
    expect(after.some((sample) => Object.values(sample.labels).some((value) => value.includes('no-such-page')))).toBe(false);
    expect(valueOf(after, 'exai_http_request_duration_seconds_count', { method: 'GET', route: '/metrics', status_class: '2xx' })).toBeGreaterThan(0);
  });

  it('still answers when the queue-depth source fails, and shows the depths when it works', async () => {
    const prometheus = exai.server.services.prometheus;
    try {
      prometheus.setQueueDepthSource(async () => {
        throw new Error('the job runner is not there');
      });
      expect(seriesOf(await scrape(), 'exai_job_queue_depth')).toEqual([]);
      prometheus.setQueueDepthSource(async () => ({ summarize: 2 }));
      expect(valueOf(await scrape(), 'exai_job_queue_depth', { queue: 'summarize' })).toBe(2);
    } finally {
      prometheus.setQueueDepthSource(undefined);
    }
  });
});
