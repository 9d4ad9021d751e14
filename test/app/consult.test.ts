import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { consult } from '../../src/app/consult.js';
import type { Cache } from '../../src/cache/types.js';
import { loadConfig } from '../../src/config.js';
import { ConversationStore } from '../../src/conversations/store.js';
import { asService } from '../../src/db/session.js';
import { MemoryCallRecorder } from '../../src/providers/call-recorder.js';
import { ProviderClient } from '../../src/providers/client.js';
import { ModelRegistry, type ProviderName } from '../../src/providers/registry.js';
import { ProviderRouter } from '../../src/providers/router.js';
import { ensureUser } from '../../src/users/users.js';
import { expectExaiError } from '../support/assertions.js';
import { silentLogger, storageBackends, type TestDatabase } from '../support/backends.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';

const system = 'You are a careful second opinion.';

describe.each(storageBackends())('consulting a model in a conversation on $name', (backend) => {
  let database: TestDatabase;
  let cache: Cache;
  let fake: FakeOpenAI;
  let conversations: ConversationStore;
  let router: ProviderRouter;
  let userId: string;

  beforeAll(async () => {
    database = await backend.createDatabase();
    cache = await backend.createCache();
    fake = await startFakeOpenAI();
    conversations = new ConversationStore(database.db, cache, { cacheTtlMs: 60_000, maxMessageBytes: 1 << 20, maxThreadDepth: 10 }, silentLogger);
    const config = loadConfig(
      { EXAI_HOME: '/tmp/unused', GLM_API_KEY: 'g', GLM_BASE_URL: fake.baseUrl, OPENAI_COMPAT_BASE_URL: fake.baseUrl, OPENAI_COMPAT_MODELS: 'tiny' },
      { cwd: '/tmp' },
    );
    const recorder = new MemoryCallRecorder();
    const clients = new Map<ProviderName, ProviderClient>(
      (['glm', 'openai-compat'] as const).map((provider) => [
        provider,
        new ProviderClient({ provider, baseUrl: fake.baseUrl, apiKey: 'k', timeoutMs: 5000, retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 }, recorder }),
      ]),
    );
    router = new ProviderRouter(ModelRegistry.fromConfig(config), clients, { maxConcurrent: 4 });
    userId = (await ensureUser(database.db, 'consulter')).id;
  });

  afterAll(async () => {
    await fake?.close();
    await cache?.close();
    await database?.destroy();
  });

  beforeEach(() => {
    fake.requests.length = 0;
    fake.fallback = { kind: 'answer', content: 'ok' };
  });

  const options = () => ({ userId, toolName: 'chat', systemPrompt: system });
  const deps = () => ({ conversations, router, config: { files: { allowedRoots: ['/tmp'], rootsExplicit: true, protectedPaths: [], maxFileBytes: 1 << 16, maxTotalBytes: 1 << 18, maxImageBytes: 1 << 20 }, limits: { maxMessageBytes: 1 << 20, maxThreadDepth: 10 } } });

  it('starts a conversation, stores question and answer, and continues it with the same model', async () => {
    fake.script({ kind: 'answer', content: 'Use short-lived tokens.', reasoning: 'Thinking about tokens.', usage: { prompt_tokens: 30, completion_tokens: 6 } });
    const first = await consult(deps(), { prompt: 'How long should tokens live?', model: 'glm-4.6' }, options());
    expect(first).toMatchObject({ content: 'Use short-lived tokens.', model: 'glm-4.6', provider: 'glm', turnCount: 2, inputTokens: 30, outputTokens: 6 });
    expect(fake.requests[0]!.body.messages).toEqual([
      { role: 'system', content: system },
      { role: 'user', content: 'How long should tokens live?' },
    ]);

    fake.script({ kind: 'answer', content: 'Fifteen minutes.' });
    const second = await consult(deps(), { prompt: 'How many minutes?', continuationId: first.continuationId }, options());
    expect(second).toMatchObject({ continuationId: first.continuationId, model: 'glm-4.6', turnCount: 4 });
    expect(fake.requests[1]!.body.messages).toEqual([
      { role: 'system', content: system },
      { role: 'user', content: 'How long should tokens live?' },
      { role: 'assistant', content: 'Use short-lived tokens.', reasoning_content: 'Thinking about tokens.' },
      { role: 'user', content: 'How many minutes?' },
    ]);
    const thread = await conversations.loadThread(userId, first.continuationId);
    expect(thread.turns.map((turn) => [turn.role, turn.content, turn.model])).toEqual([
      ['user', 'How long should tokens live?', null],
      ['assistant', 'Use short-lived tokens.', 'glm-4.6'],
      ['user', 'How many minutes?', null],
      ['assistant', 'Fifteen minutes.', 'glm-4.6'],
    ]);
    expect(thread.turns[1]).toMatchObject({ provider: 'glm', reasoningContent: 'Thinking about tokens.', inputTokens: 30, outputTokens: 6, toolName: 'chat' });
  });

  it('stores nothing when the model cannot answer', async () => {
    const count = async () =>
      (await asService(database.db, (tx) => tx.query<{ n: number }>('SELECT count(*)::int AS n FROM exai.conversations WHERE owner_id = $1', [userId]))).rows[0]!.n;
    const before = await count();
    fake.fallback = { kind: 'error', status: 503 };
    const error = await expectExaiError(consult(deps(), { prompt: 'Anyone there?', model: 'glm-4.6' }, options()));
    expect(error.code).toBe('provider_unavailable');
    expect(await count()).toBe(before);
  });

  it('answers an unknown continuation id before calling any model', async () => {
    const error = await expectExaiError(
      consult(deps(), { prompt: 'hi', continuationId: '6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab' }, options()),
    );
    expect(error.code).toBe('not_found');
    const malformed = await expectExaiError(consult(deps(), { prompt: 'hi', continuationId: 'nope' }, options()));
    expect(malformed.code).toBe('invalid_argument');
    const empty = await expectExaiError(consult(deps(), { prompt: '' }, options()));
    expect(empty.message).toContain('prompt: must not be empty');
    expect(fake.requests).toHaveLength(0);
  });

  it('sends only the newest turns that fit the model\u2019s history budget', async () => {
    // "tiny" comes from OPENAI_COMPAT_MODELS: 32K context, so about 9,800 tokens of history.
    const thread = await conversations.createThread(userId, { toolName: 'chat' });
    for (let index = 0; index < 12; index += 1) {
      await conversations.appendTurn(userId, thread.id, { role: index % 2 ? 'assistant' : 'user', content: `${index} ${'x'.repeat(8000)}` });
    }
    const result = await consult(deps(), { prompt: 'Summarise.', continuationId: thread.id, model: 'tiny' }, options());
    const sent = fake.requests[0]!.body.messages as { content: string }[];
    expect(result.history.omitted).toBeGreaterThan(0);
    expect(sent.length - 2 + result.history.omitted).toBe(12);
    expect(sent.at(-2)!.content.startsWith('11 ')).toBe(true); // the newest old turn is kept
    expect(sent[1]!.content.startsWith(`${result.history.omitted} `)).toBe(true); // oldest kept, in order
  });

  it('replays reasoning only to the provider that produced it', async () => {
    fake.script({ kind: 'answer', content: 'Answer.', reasoning: 'Private chain of thought.' });
    const first = await consult(deps(), { prompt: 'Think.', model: 'glm-4.6' }, options());
    await consult(deps(), { prompt: 'Again, elsewhere.', continuationId: first.continuationId, model: 'tiny' }, options());
    expect(fake.requests[1]!.body.model).toBe('tiny');
    expect(fake.requests[1]!.body.messages).toEqual([
      { role: 'system', content: system },
      { role: 'user', content: 'Think.' },
      { role: 'assistant', content: 'Answer.' },
      { role: 'user', content: 'Again, elsewhere.' },
    ]);
  });

  it('refuses a prompt too large to store before calling any model', async () => {
    const error = await expectExaiError(consult(deps(), { prompt: 'x'.repeat((1 << 20) + 1), model: 'glm-4.6' }, options()));
    expect(error.code).toBe('too_large');
    expect(error.message).toContain('EXAI_MAX_MESSAGE_BYTES');
    expect(fake.requests).toHaveLength(0);
  });

  it('stores a retried request once', async () => {
    const first = await consult(deps(), { prompt: 'once', model: 'glm-4.6' }, { ...options(), requestId: 'req-1' });
    const again = await consult(deps(), { prompt: 'once', continuationId: first.continuationId }, { ...options(), requestId: 'req-1' });
    expect(again.turnCount).toBe(2);
    expect((await conversations.loadThread(userId, first.continuationId)).turnCount).toBe(2);
  });
});
