import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { MemoryCallRecorder } from '../../src/providers/call-recorder.js';
import { ProviderClient } from '../../src/providers/client.js';
import { ModelRegistry, type ProviderName } from '../../src/providers/registry.js';
import { ProviderRouter } from '../../src/providers/router.js';
import { expectExaiError } from '../support/assertions.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';

const fastRetry = { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 };

describe('provider router', () => {
  let kimi: FakeOpenAI;
  let glm: FakeOpenAI;
  let recorder: MemoryCallRecorder;

  beforeAll(async () => {
    kimi = await startFakeOpenAI();
    glm = await startFakeOpenAI();
  });
  afterAll(async () => {
    await kimi.close();
    await glm.close();
  });
  beforeEach(() => {
    for (const fake of [kimi, glm]) {
      fake.requests.length = 0;
      fake.fallback = { kind: 'answer', content: 'ok' };
    }
    recorder = new MemoryCallRecorder();
  });

  function router(options: { providers?: ProviderName[]; maxConcurrent?: number; failureThreshold?: number; cooldownMs?: number } = {}) {
    const providers = options.providers ?? ['kimi', 'glm'];
    const env: Record<string, string> = { EXAI_HOME: '/tmp/unused' };
    if (providers.includes('kimi')) Object.assign(env, { KIMI_API_KEY: 'kimi-key', KIMI_BASE_URL: kimi.baseUrl });
    if (providers.includes('glm')) Object.assign(env, { GLM_API_KEY: 'glm-key', GLM_BASE_URL: glm.baseUrl });
    const config = loadConfig(env, { cwd: '/tmp' });
    const clients = new Map<ProviderName, ProviderClient>();
    for (const provider of providers) {
      const fake = provider === 'kimi' ? kimi : glm;
      clients.set(provider, new ProviderClient({ provider, baseUrl: fake.baseUrl, apiKey: `${provider}-key`, timeoutMs: 5000, retry: fastRetry, recorder }));
    }
    return new ProviderRouter(ModelRegistry.fromConfig(config), clients, {
      maxConcurrent: options.maxConcurrent ?? 4,
      breaker: { failureThreshold: options.failureThreshold ?? 5, cooldownMs: options.cooldownMs ?? 30_000 },
    });
  }

  const ask = { messages: [{ role: 'user' as const, content: 'hello' }] };

  it('falls back to the next model when a provider is unavailable, and says so', async () => {
    kimi.fallback = { kind: 'error', status: 503 };
    glm.fallback = { kind: 'answer', content: 'from glm' };
    const result = await router().chat({ ...ask, model: 'kimi', fallbacks: ['glm-4.6'] });
    expect(result).toMatchObject({ content: 'from glm', provider: 'glm', model: 'glm-4.6' });
    expect(result.passedOver).toEqual([{ model: 'kimi-k2-0905-preview', reason: expect.stringContaining('http_503') }]);
    expect(kimi.requests).toHaveLength(2); // its own retries first
  });

  it('opens the circuit after repeated failures, skips the provider, and tries it again after the cooldown', async () => {
    const routed = router({ failureThreshold: 2, cooldownMs: 300 });
    kimi.fallback = { kind: 'error', status: 500 };
    for (let index = 0; index < 2; index += 1) await routed.chat({ ...ask, model: 'kimi', fallbacks: ['glm'] });
    const before = kimi.requests.length;
    const skipped = await routed.chat({ ...ask, model: 'kimi', fallbacks: ['glm'] });
    expect(kimi.requests).toHaveLength(before); // not even asked
    expect(skipped.passedOver[0]!.reason).toMatch(/kimi is failing; retried in \d+ s/);
    await new Promise((resolve) => setTimeout(resolve, 350));
    kimi.fallback = { kind: 'answer', content: 'kimi is back' };
    const trial = await routed.chat({ ...ask, model: 'kimi', fallbacks: ['glm'] });
    expect(trial).toMatchObject({ content: 'kimi is back', provider: 'kimi', passedOver: [] });
  });

  it('keeps each provider within its concurrency limit', async () => {
    kimi.fallback = { kind: 'answer', content: 'slow', delayMs: 100 };
    const routed = router({ maxConcurrent: 2 });
    const results = await Promise.all(Array.from({ length: 5 }, () => routed.chat({ ...ask, model: 'kimi' })));
    expect(results.every((result) => result.content === 'slow')).toBe(true);
    expect(kimi.peakConcurrency).toBe(2);
  });

  it('does not fall back from a request the provider rejects as bad', async () => {
    kimi.fallback = { kind: 'error', status: 400 };
    const error = await expectExaiError(router().chat({ ...ask, model: 'kimi', fallbacks: ['glm'] }));
    expect(error.code).toBe('provider_error');
    expect(glm.requests).toHaveLength(0);
  });

  it('switches GLM thinking only on models that have it', async () => {
    const routed = router();
    await routed.chat({ ...ask, model: 'glm-4.6', thinking: true });
    await routed.chat({ ...ask, model: 'glm-4.5-flash', thinking: true });
    expect(glm.requests[0]!.body.thinking).toEqual({ type: 'enabled' });
    expect(glm.requests[1]!.body).not.toHaveProperty('thinking');
  });

  it('resolves auto to a configured model, and explains when none is configured', async () => {
    expect(router().pick('auto').name).toBe('kimi-k2-0905-preview');
    expect(router({ providers: ['glm'] }).pick('auto').name).toBe('glm-4.6');
    const none = await expectExaiError(router({ providers: [] }).chat({ ...ask, model: 'auto' }));
    expect(none.message).toContain('no provider is configured');
  });

  it('fails with every reason when no model in the chain can answer', async () => {
    kimi.fallback = { kind: 'error', status: 502 };
    glm.fallback = { kind: 'error', status: 503 };
    const error = await expectExaiError(router().chat({ ...ask, model: 'kimi', fallbacks: ['glm'] }));
    expect(error.code).toBe('provider_unavailable');
    expect(error.message).toMatch(/No model could answer\. kimi-k2-0905-preview: .*http_502.*; glm-4\.6: .*http_503/);
    expect(error.message).not.toMatch(/kimi-key|glm-key/);
  });
});
