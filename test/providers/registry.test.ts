import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ModelRegistry } from '../../src/providers/registry.js';
import { expectExaiError } from '../support/assertions.js';

const configWith = (env: Record<string, string>) => loadConfig({ EXAI_HOME: '/tmp/unused', ...env }, { cwd: '/tmp' });

describe('model registry', () => {
  it('offers only the models of configured providers', () => {
    const kimiOnly = ModelRegistry.fromConfig(configWith({ KIMI_API_KEY: 'k' }));
    expect(kimiOnly.models.every((model) => model.provider === 'kimi')).toBe(true);
    expect(kimiOnly.models.map((model) => model.name)).toContain('kimi-k2-0905-preview');
    const both = ModelRegistry.fromConfig(configWith({ KIMI_API_KEY: 'k', GLM_API_KEY: 'g' }));
    expect(new Set(both.models.map((model) => model.provider))).toEqual(new Set(['kimi', 'glm']));
    const local = ModelRegistry.fromConfig(configWith({ OPENAI_COMPAT_BASE_URL: 'http://127.0.0.1:11434/v1', OPENAI_COMPAT_MODELS: 'llama3.1:8b, qwen2.5-coder:7b' }));
    expect(local.models.map((model) => [model.name, model.provider])).toEqual([
      ['llama3.1:8b', 'openai-compat'],
      ['qwen2.5-coder:7b', 'openai-compat'],
    ]);
    expect(ModelRegistry.fromConfig(configWith({})).models).toEqual([]);
  });

  it('resolves names and aliases case-insensitively, and says what is available otherwise', async () => {
    const registry = ModelRegistry.fromConfig(configWith({ KIMI_API_KEY: 'k', GLM_API_KEY: 'g' }));
    expect(registry.resolve('GLM').name).toBe('glm-4.6');
    expect(registry.resolve('kimi-thinking').capabilities.thinking).toBe(true);
    expect(registry.resolve(' glm-4.5v ').capabilities.vision).toBe(true);
    const unknown = await expectExaiError(Promise.resolve().then(() => registry.resolve('gpt-9')));
    expect(unknown.message).toContain('Model "gpt-9" is not available. Available: kimi-k2-0905-preview');
    const none = await expectExaiError(Promise.resolve().then(() => ModelRegistry.fromConfig(configWith({})).resolve('glm')));
    expect(none.message).toContain('no provider is configured');
  });

  it('prices calls from the registry, and knows when it cannot', () => {
    const registry = ModelRegistry.fromConfig(configWith({ KIMI_API_KEY: 'k', GLM_API_KEY: 'g' }));
    expect(ModelRegistry.cost(registry.resolve('kimi-k2-0905-preview'), 1_000_000, 500_000)).toBeCloseTo(0.6 + 1.25, 10);
    expect(ModelRegistry.cost(registry.resolve('glm-4.5-flash'), 5000, 5000)).toBe(0);
    expect(ModelRegistry.cost(registry.resolve('glm-4.6'), 1000, 1000)).toBeNull();
  });
});
