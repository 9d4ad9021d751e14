/**
 * Search through MCP and REST in a running server: a chat turn is indexed by
 * the job shortly after it is stored (never during the call), and
 * conversation_search and GET /api/v1/search find it with its continuation id,
 * for its owner only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countPending } from '../../src/search/indexer.js';
import { storageBackends } from '../support/backends.js';
import { startAuthExai, type AuthExai } from '../support/auth-server.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';

describe.each(storageBackends())('search through MCP and REST on $name', (backend) => {
  let exai: AuthExai;
  let fake: FakeOpenAI;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    exai = await startAuthExai(backend, { GLM_API_KEY: 'glm-test-key', GLM_BASE_URL: fake.baseUrl });
  }, 60_000);

  afterAll(async () => {
    await exai?.close();
    await fake?.close();
  });

  it('indexes a stored turn off the call path and finds it for its owner only', async () => {
    const alice = await exai.userWithKey('alice');
    const bob = await exai.userWithKey('bob');
    const session = await exai.connect(alice.key);
    fake.script({ kind: 'answer', content: 'Use exponential backoff with jitter for the webhook retries.' });
    const chat = await session.call('chat', { prompt: 'How should webhook deliveries be retried?', model: 'glm-4.6' });
    const continuation = (chat.structuredContent as { continuation_id: string }).continuation_id;
    const { services } = exai.server;
    const deadline = Date.now() + 20_000;
    while ((await countPending(services.db, services.search.embedder.model)) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await countPending(services.db, services.search.embedder.model)).toBe(0);

    const found = await session.call('conversation_search', { query: 'webhook retry backoff' });
    expect(found.isError).toBeFalsy();
    const answer = found.structuredContent as { mode: string; results: { continuation_id: string; title: string; snippet: string; score: number }[] };
    expect(answer.mode).toBe('hybrid');
    expect(answer.results[0]).toMatchObject({ continuation_id: continuation, title: expect.stringContaining('webhook') });
    expect(answer.results[0]!.snippet).toContain('**');
    expect(answer.results[0]!.score).toBeGreaterThan(0);

    const rest = await fetch(`${exai.url}/api/v1/search?q=webhook+backoff&limit=5`, { headers: { authorization: `Bearer ${alice.key}` } });
    expect(rest.status).toBe(200);
    expect(((await rest.json()) as typeof answer).results[0]!.continuation_id).toBe(continuation);
    const theirs = await fetch(`${exai.url}/api/v1/search?q=webhook+backoff`, { headers: { authorization: `Bearer ${bob.key}` } });
    expect(((await theirs.json()) as typeof answer).results).toEqual([]);
    const bad = await fetch(`${exai.url}/api/v1/search?q=x&colour=blue`, { headers: { authorization: `Bearer ${alice.key}` } });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/Unknown parameter colour/);
    const empty = await session.call('conversation_search', { query: '   ' });
    expect(empty.isError).toBe(true);

    // use_memory: a new conversation gets the related earlier turns in its system prompt.
    fake.requests.length = 0;
    fake.script({ kind: 'answer', content: 'As discussed before: backoff with jitter.' });
    const remembered = await session.call('chat', { prompt: 'Remind me how we retry webhook deliveries', model: 'glm-4.6', use_memory: true });
    const memory = (remembered.structuredContent as { memory?: { continuation_id: string }[] }).memory;
    expect(memory?.map((entry) => entry.continuation_id)).toEqual([continuation]);
    const system = (fake.requests.find((request) => request.path?.endsWith('/chat/completions'))!.body as { messages: { role: string; content: string }[] }).messages[0]!;
    expect(system.role).toBe('system');
    expect(system.content).toContain(`continuation_id ${continuation}`);
    expect(system.content).toContain('exponential backoff with jitter');
    // Continuing that conversation itself does not bring it back as memory.
    fake.script({ kind: 'answer', content: 'ok' });
    const same = await session.call('chat', { prompt: 'And for webhook retries?', model: 'glm-4.6', use_memory: true, continuation_id: continuation });
    expect((same.structuredContent as { memory?: { continuation_id: string }[] }).memory?.map((entry) => entry.continuation_id)).not.toContain(continuation);
  }, 60_000);
});

describe.each(storageBackends())('search with a provider embedding model on $name', (backend) => {
  let exai: AuthExai;
  let fake: FakeOpenAI;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    exai = await startAuthExai(backend, { GLM_API_KEY: 'glm-test-key', GLM_BASE_URL: fake.baseUrl, EXAI_EMBEDDING_MODEL: 'embedding-3', EXAI_EMBEDDING_DIMENSIONS: '8' });
  }, 60_000);

  afterAll(async () => {
    await exai?.close();
    await fake?.close();
  });

  it('takes vectors from the provider, indexes them under the model, and falls back to full text when it is down', async () => {
    const alice = await exai.userWithKey('alice');
    const session = await exai.connect(alice.key);
    fake.script({ kind: 'answer', content: 'Partition the events table by day and drop old partitions.' });
    await session.call('chat', { prompt: 'How do I keep the events table small?', model: 'glm-4.6' });
    const { services } = exai.server;
    expect(services.search.embedder).toMatchObject({ model: 'embedding-3', dimensions: 8, local: false });
    const deadline = Date.now() + 20_000;
    while ((await countPending(services.db, 'embedding-3')) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await countPending(services.db, 'embedding-3')).toBe(0);
    const embeddingCalls = fake.requests.filter((request) => request.path?.endsWith('/embeddings'));
    expect(embeddingCalls.length).toBeGreaterThan(0);
    expect(embeddingCalls[0]!.body).toMatchObject({ model: 'embedding-3', dimensions: 8 });
    const indexes = await services.db.query<{ indexdef: string }>("SELECT indexdef FROM pg_indexes WHERE schemaname = 'exai' AND tablename = 'message_embeddings' AND indexdef LIKE '%embedding-3%'");
    expect(indexes.rows[0]?.indexdef).toMatch(/hnsw .*vector\(8\)/);

    // Embedding calls are recorded with the other provider calls.
    await services.recorder.flush();
    const recorded = await services.db.query<{ n: number; tokens: number }>(
      "SELECT count(*)::int AS n, coalesce(sum(input_tokens), 0)::int AS tokens FROM exai.performance_metrics WHERE kind = 'provider' AND model = 'embedding-3' AND outcome = 'ok'",
    );
    expect(recorded.rows[0]!.n).toBeGreaterThan(0);
    const found = (await session.call('conversation_search', { query: 'events partitions' })).structuredContent as { mode: string; embedder: { model: string; kind: string }; results: { continuation_id: string }[] };
    expect(found).toMatchObject({ mode: 'hybrid', embedder: { model: 'embedding-3', kind: 'semantic' } });
    expect(found.results).toHaveLength(1);

    fake.scriptEmbeddings(...Array.from({ length: 10 }, () => ({ kind: 'error' as const, status: 503 })));
    const fallback = (await session.call('conversation_search', { query: 'events partitions' })).structuredContent as { mode: string; note: string; results: unknown[] };
    expect(fallback.mode).toBe('full_text');
    expect(fallback.note).toMatch(/could not be reached/);
    expect(fallback.results).toHaveLength(1);
  }, 60_000);
});
