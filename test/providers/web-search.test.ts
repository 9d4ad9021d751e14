import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { MemoryCallRecorder } from '../../src/providers/call-recorder.js';
import { ProviderClient } from '../../src/providers/client.js';
import { ModelRegistry, builtInModels, type ModelInfo, type ProviderName } from '../../src/providers/registry.js';
import { ProviderRouter } from '../../src/providers/router.js';
import { expectExaiError } from '../support/assertions.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';

const fastRetry = { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 };
const ask = { messages: [{ role: 'user' as const, content: 'What changed in Node 20.12?' }] };
const kimiSearchTool = { type: 'builtin_function', function: { name: '$web_search' } };
const glmSearchTool = { type: 'web_search', web_search: { enable: true, search_result: true } };
/** What Kimi sends as a `$web_search` call's arguments; the client must hand it back untouched. */
const searchArguments = JSON.stringify({ search_result: { search_id: 'sr-42' }, usage: { total_tokens: 1832 }, query: 'Node.js 20.12 "util.parseEnv"' });

describe('web search', () => {
  let kimi: FakeOpenAI;
  let glm: FakeOpenAI;
  let compat: FakeOpenAI;
  let recorder: MemoryCallRecorder;

  beforeAll(async () => {
    [kimi, glm, compat] = await Promise.all([startFakeOpenAI(), startFakeOpenAI(), startFakeOpenAI()]);
  });
  afterAll(async () => {
    await Promise.all([kimi.close(), glm.close(), compat.close()]);
  });
  beforeEach(() => {
    for (const fake of [kimi, glm, compat]) {
      fake.requests.length = 0;
      fake.fallback = { kind: 'answer', content: 'ok' };
    }
    recorder = new MemoryCallRecorder();
  });

  const fakes = () => ({ kimi, glm, 'openai-compat': compat }) as Record<ProviderName, FakeOpenAI>;

  function client(provider: ProviderName, options: { timeoutMs?: number; maxSearchRounds?: number } = {}) {
    return new ProviderClient({
      provider,
      baseUrl: fakes()[provider].baseUrl,
      apiKey: `${provider}-key`,
      timeoutMs: options.timeoutMs ?? 5000,
      retry: fastRetry,
      recorder,
      ...(options.maxSearchRounds === undefined ? {} : { maxSearchRounds: options.maxSearchRounds }),
    });
  }

  /** Kimi, GLM and an OpenAI-compatible endpoint serving `llama3.1:8b`, plus any extra models. */
  function router(extraModels: ModelInfo[] = []) {
    const config = loadConfig(
      {
        EXAI_HOME: '/tmp/unused',
        KIMI_API_KEY: 'kimi-key',
        KIMI_BASE_URL: kimi.baseUrl,
        GLM_API_KEY: 'glm-key',
        GLM_BASE_URL: glm.baseUrl,
        OPENAI_COMPAT_BASE_URL: compat.baseUrl,
        OPENAI_COMPAT_MODELS: 'llama3.1:8b',
      },
      { cwd: '/tmp' },
    );
    const clients = new Map<ProviderName, ProviderClient>((['kimi', 'glm', 'openai-compat'] as const).map((provider) => [provider, client(provider)]));
    const registry = new ModelRegistry([...ModelRegistry.fromConfig(config).models, ...extraModels]);
    return new ProviderRouter(registry, clients, { maxConcurrent: 4, breaker: { failureThreshold: 5, cooldownMs: 30_000 } });
  }

  describe('Kimi', () => {
    it('offers $web_search, echoes the search arguments back, and answers with the search, in one call record', async () => {
      kimi.script(
        {
          kind: 'tool_calls',
          calls: [{ id: 'call-search-1', name: '$web_search', arguments: searchArguments }],
          reasoning: 'I need current release notes.',
          usage: { prompt_tokens: 40, completion_tokens: 12 },
        },
        { kind: 'answer', content: 'Node 20.12 added util.parseEnv.', usage: { prompt_tokens: 1900, completion_tokens: 9 } },
      );
      const deltas: string[] = [];
      const result = await router().chat({ ...ask, model: 'kimi', webSearch: true, tool: 'chat', onDelta: (delta) => deltas.push(delta.content ?? '') });

      expect(result).toMatchObject({
        content: 'Node 20.12 added util.parseEnv.',
        provider: 'kimi',
        model: 'kimi-k2-0905-preview',
        webSearch: 'used',
        webSearchRounds: 1,
        inputTokens: 1940,
        outputTokens: 21,
        attempts: 2,
        passedOver: [],
      });
      expect(result).not.toHaveProperty('sources');
      expect(deltas.join('')).toBe('Node 20.12 added util.parseEnv.');

      expect(kimi.requests).toHaveLength(2);
      for (const request of kimi.requests) expect(request.body.tools).toEqual([kimiSearchTool]);
      expect(kimi.requests[0]!.body.messages).toEqual([{ role: 'user', content: 'What changed in Node 20.12?' }]);
      expect(kimi.requests[1]!.body.messages).toEqual([
        { role: 'user', content: 'What changed in Node 20.12?' },
        {
          role: 'assistant',
          content: '',
          reasoning_content: 'I need current release notes.',
          tool_calls: [{ id: 'call-search-1', type: 'function', function: { name: '$web_search', arguments: searchArguments } }],
        },
        { role: 'tool', tool_call_id: 'call-search-1', name: '$web_search', content: searchArguments },
      ]);
      expect(recorder.recent()).toEqual([
        expect.objectContaining({ provider: 'kimi', tool: 'chat', outcome: 'ok', inputTokens: 1940, outputTokens: 21, attempts: 2 }),
      ]);
    });

    it('says when search was offered and the model answered without it', async () => {
      const result = await router().chat({ ...ask, model: 'kimi', webSearch: true });
      expect(result).toMatchObject({ content: 'ok', webSearch: 'available_not_used', webSearchRounds: 0 });
      expect(kimi.requests[0]!.body.tools).toEqual([kimiSearchTool]);
    });

    it('sends no tools unless web search is asked for', async () => {
      const result = await router().chat({ ...ask, model: 'kimi' });
      expect(result.webSearch).toBe('off');
      expect(result).not.toHaveProperty('webSearchRounds');
      expect(kimi.requests[0]!.body).not.toHaveProperty('tools');
    });

    it('answers without search on a Kimi model that has none', async () => {
      const result = await router().chat({ ...ask, model: 'kimi-thinking-preview', webSearch: true });
      expect(result).toMatchObject({ content: 'ok', webSearch: 'unsupported' });
      expect(kimi.requests[0]!.body).not.toHaveProperty('tools');
    });

    it('echoes every search of a turn, in order, and retries a lost connection in a later round', async () => {
      const second = JSON.stringify({ query: 'util.parseEnv' });
      kimi.script(
        {
          kind: 'tool_calls',
          calls: [
            { id: 'call-a', name: '$web_search', arguments: searchArguments },
            { id: 'call-b', name: '$web_search', arguments: second },
          ],
        },
        { kind: 'drop' },
        { kind: 'answer', content: 'Both searches agree.' },
      );
      const result = await client('kimi').chat({ ...ask, model: 'kimi-k2-0905-preview', tools: [{ type: 'builtin_function', function: { name: '$web_search' } }] });
      expect(result).toMatchObject({ content: 'Both searches agree.', webSearch: 'used', webSearchRounds: 1, attempts: 3 });
      expect(kimi.requests[2]!.body.messages).toEqual(kimi.requests[1]!.body.messages);
      expect((kimi.requests[2]!.body.messages as unknown[]).slice(-3)).toEqual([
        {
          role: 'assistant',
          content: '',
          tool_calls: [
            { id: 'call-a', type: 'function', function: { name: '$web_search', arguments: searchArguments } },
            { id: 'call-b', type: 'function', function: { name: '$web_search', arguments: second } },
          ],
        },
        { role: 'tool', tool_call_id: 'call-a', name: '$web_search', content: searchArguments },
        { role: 'tool', tool_call_id: 'call-b', name: '$web_search', content: second },
      ]);
      expect(recorder.recent()).toEqual([expect.objectContaining({ outcome: 'ok', attempts: 3 })]);
    });

    it('fails clearly when the model keeps searching past the round cap', async () => {
      kimi.fallback = { kind: 'tool_calls', calls: [{ id: 'call-again', name: '$web_search', arguments: searchArguments }] };
      const error = await expectExaiError(client('kimi', { maxSearchRounds: 2 }).chat({ ...ask, model: 'kimi-k2-0905-preview', tools: [{ type: 'builtin_function', function: { name: '$web_search' } }] }));
      expect(error.code).toBe('provider_error');
      expect(error.message).toBe('kimi model kimi-k2-0905-preview was still searching the web after 2 rounds without answering; ask a narrower question or turn web search off.');
      expect(kimi.requests).toHaveLength(3);
      expect(recorder.recent()).toEqual([expect.objectContaining({ outcome: 'error', errorClass: 'search_rounds_exceeded', attempts: 3 })]);
    });

    it('refuses a tool call other than $web_search', async () => {
      kimi.script({ kind: 'tool_calls', calls: [{ id: 'call-x', name: 'run_shell', arguments: '{"cmd":"ls"}' }] });
      const error = await expectExaiError(router().chat({ ...ask, model: 'kimi', webSearch: true, fallbacks: ['glm'] }));
      expect(error.code).toBe('provider_error');
      expect(error.message).toBe('kimi model kimi-k2-0905-preview asked to call the tool "run_shell", which exai does not offer; only $web_search is handled.');
      expect(kimi.requests).toHaveLength(1); // neither retried nor searched again
      expect(glm.requests).toHaveLength(0); // nor passed to a fallback: it is not an outage
      expect(recorder.recent()).toEqual([expect.objectContaining({ outcome: 'error', errorClass: 'unexpected_tool_call', attempts: 1 })]);
    });

    it('keeps one timeout over every round', async () => {
      kimi.script({ kind: 'tool_calls', calls: [{ id: 'call-1', name: '$web_search', arguments: searchArguments }] }, { kind: 'hang' });
      const error = await expectExaiError(client('kimi', { timeoutMs: 300 }).chat({ ...ask, model: 'kimi-k2-0905-preview', tools: [{ type: 'builtin_function', function: { name: '$web_search' } }] }));
      expect(error.code).toBe('timeout');
      expect(recorder.recent()).toEqual([expect.objectContaining({ outcome: 'timeout', attempts: 2 })]);
    });
  });

  describe('GLM', () => {
    const glmWithoutSearch: ModelInfo = {
      ...builtInModels.find((model) => model.name === 'glm-4.5-flash')!,
      name: 'glm-nosearch',
      aliases: [],
      capabilities: { thinking: false, vision: false, tools: true, webSearch: false, files: false },
    };

    it('offers its web_search tool only on a capable model, and only when asked', async () => {
      const routed = router([glmWithoutSearch]);
      await routed.chat({ ...ask, model: 'glm-4.6', webSearch: true });
      await routed.chat({ ...ask, model: 'glm-4.6' });
      await routed.chat({ ...ask, model: 'glm-4.6', webSearch: false });
      const unsupported = await routed.chat({ ...ask, model: 'glm-nosearch', webSearch: true });
      expect(glm.requests[0]!.body.tools).toEqual([glmSearchTool]);
      for (const request of glm.requests.slice(1)) expect(request.body).not.toHaveProperty('tools');
      expect(unsupported.webSearch).toBe('unsupported');
    });

    it('reports the sources GLM searched, one per link', async () => {
      glm.script({
        kind: 'answer',
        content: 'Node 20.12 added util.parseEnv.',
        webSearch: [
          { title: 'Node.js 20.12.0 release notes', link: 'https://nodejs.org/en/blog/release/v20.12.0', media: 'nodejs.org', content: 'util.parseEnv …' },
          { title: 'Node.js util docs', link: 'https://nodejs.org/api/util.html', media: 'nodejs.org', content: 'util.parseEnv(content)' },
          { title: 'Node.js 20.12.0 release notes (again)', link: 'https://nodejs.org/en/blog/release/v20.12.0' },
        ],
      });
      const result = await router().chat({ ...ask, model: 'glm', webSearch: true });
      expect(result).toMatchObject({ content: 'Node 20.12 added util.parseEnv.', webSearch: 'used' });
      expect(result.sources).toEqual([
        { title: 'Node.js 20.12.0 release notes', url: 'https://nodejs.org/en/blog/release/v20.12.0' },
        { title: 'Node.js util docs', url: 'https://nodejs.org/api/util.html' },
      ]);
      expect(result).not.toHaveProperty('webSearchRounds');
      expect(glm.requests).toHaveLength(1); // GLM searches server-side: no client loop
    });

    it('says when search was offered and no sources came back', async () => {
      const result = await router().chat({ ...ask, model: 'glm', webSearch: true });
      expect(result.webSearch).toBe('available_not_used');
      expect(result).not.toHaveProperty('sources');
    });
  });

  describe('OpenAI-compatible endpoints', () => {
    it('send no tools and report web search as unsupported', async () => {
      const result = await router().chat({ ...ask, model: 'llama3.1:8b', webSearch: true });
      expect(result).toMatchObject({ content: 'ok', provider: 'openai-compat', webSearch: 'unsupported' });
      expect(compat.requests[0]!.body).not.toHaveProperty('tools');
    });

    it('judge each model of a fallback chain on its own', async () => {
      kimi.fallback = { kind: 'error', status: 503 };
      const result = await router().chat({ ...ask, model: 'kimi', webSearch: true, fallbacks: ['llama3.1:8b'] });
      expect(result).toMatchObject({ provider: 'openai-compat', webSearch: 'unsupported' });
      expect(kimi.requests[0]!.body.tools).toEqual([kimiSearchTool]);
      expect(compat.requests[0]!.body).not.toHaveProperty('tools');
    });
  });

  describe('fake server', () => {
    it('answers a tool-call turn and GLM search results as plain JSON when not streaming', async () => {
      kimi.script(
        { kind: 'tool_calls', calls: [{ id: 'call-1', name: '$web_search', arguments: searchArguments }] },
        { kind: 'answer', content: 'done', webSearch: [{ title: 'A page', link: 'https://example.com/a' }] },
      );
      const post = async () => {
        const response = await fetch(`${kimi.baseUrl}/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'm', messages: [] }) });
        return (await response.json()) as Record<string, unknown>;
      };
      expect(await post()).toMatchObject({
        choices: [
          {
            finish_reason: 'tool_calls',
            message: { role: 'assistant', content: null, tool_calls: [{ id: 'call-1', type: 'function', function: { name: '$web_search', arguments: searchArguments } }] },
          },
        ],
      });
      expect(await post()).toMatchObject({
        choices: [{ finish_reason: 'stop', message: { content: 'done' } }],
        web_search: [{ title: 'A page', link: 'https://example.com/a' }],
      });
    });
  });
});
