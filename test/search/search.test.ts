/**
 * Hybrid conversation search on both databases with the built-in embedder:
 * messages are indexed by the job (idempotently, resumably), found by their
 * words and by similar wording, one result per conversation with its
 * continuation id; filters hold; queries in other scripts work; a broken
 * embedder falls back to full text and says so; bad input is refused; and no
 * user ever sees another's conversations, through the search or through
 * semantic_search().
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cache } from '../../src/cache/types.js';
import { ConversationStore } from '../../src/conversations/store.js';
import { asService, asUser } from '../../src/db/session.js';
import type { Embedder } from '../../src/search/embedder.js';
import { countPending, indexPendingMessages } from '../../src/search/indexer.js';
import { LocalHashEmbedder } from '../../src/search/local-embedder.js';
import { searchConversations, similarConversations } from '../../src/search/search.js';
import { ensureUser } from '../../src/users/users.js';
import { expectExaiError } from '../support/assertions.js';
import { silentLogger, storageBackends, type TestDatabase } from '../support/backends.js';

const options = { cacheTtlMs: 60_000, maxMessageBytes: 1024 * 1024, maxThreadDepth: 20 };

describe.each(storageBackends())('conversation search on $name', (backend) => {
  let database: TestDatabase;
  let cache: Cache;
  let store: ConversationStore;
  let alice: string;
  let bob: string;
  const embedder = new LocalHashEmbedder();
  const threads: Record<string, string> = {};
  const deps = () => ({ db: database.db, embedder, logger: silentLogger });

  async function thread(owner: string, title: string, toolName: string, turns: [string, string][], model = 'glm-4.6'): Promise<string> {
    const created = await store.createThread(owner, { title, toolName });
    await store.appendTurns(
      owner,
      created.id,
      turns.flatMap(([question, answer]) => [
        { role: 'user', content: question, toolName },
        { role: 'assistant', content: answer, toolName, provider: 'glm', model },
      ]),
    );
    return created.id;
  }

  beforeAll(async () => {
    database = await backend.createDatabase();
    cache = await backend.createCache();
    store = new ConversationStore(database.db, cache, options, silentLogger);
    alice = (await ensureUser(database.db, 'alice')).id;
    bob = (await ensureUser(database.db, 'bob')).id;
    threads.auth = await thread(alice, 'Auth refactor', 'codereview', [
      ['Review the authentication refactor: token refresh moved into middleware.', 'The refresh tokens never expire; add an expiry and rotate them on every use.'],
    ]);
    threads.cache = await thread(alice, 'Redis cache', 'chat', [['How should the Redis cache handle an outage?', 'Fall back to the database and count the misses; never fail the call.']], 'kimi-k2-0905-preview');
    threads.cjk = await thread(alice, '日本語', 'chat', [['データベースの移行について教えてください', '移行はトランザクションの中で行います 🚀']]);
    threads.bobAuth = await thread(bob, 'Bob auth', 'chat', [['Bob asks about authentication token expiry in his service.', 'Rotate tokens.']]);
  });

  afterAll(async () => {
    await cache?.close();
    await database?.destroy();
  });

  it('indexes every turn once, resumably, and finds a thread by its words and by similar wording', async () => {
    expect(await countPending(database.db, embedder.model)).toBe(8);
    const first = await indexPendingMessages(deps(), { batchSize: 3, maxBatches: 1 });
    expect(first).toEqual({ indexed: 3, remaining: 5 });
    const rest = await indexPendingMessages(deps(), { batchSize: 3 });
    expect(rest).toEqual({ indexed: 5, remaining: 0 });
    expect((await indexPendingMessages(deps())).indexed).toBe(0);

    const byWords = await searchConversations(deps(), alice, { query: 'refresh token expiry' });
    expect(byWords.mode).toBe('hybrid');
    expect(byWords.embedder).toEqual({ model: 'exai-local-hash-384', kind: 'lexical' });
    expect(byWords.results[0]).toMatchObject({ continuation_id: threads.auth, title: 'Auth refactor' });
    expect(byWords.results[0]!.snippet).toMatch(/\*\*(refresh|token|expiry)/i);
    expect(byWords.results[0]!.matched).toEqual(['text', 'meaning']);
    // Different word forms the full text does not match; the character n-grams do.
    const bySimilarWording = await searchConversations(deps(), alice, { query: 'authenticating middlewares' });
    expect(bySimilarWording.results[0]?.continuation_id).toBe(threads.auth);
    expect(bySimilarWording.results[0]?.matched).toContain('meaning');
    expect(new Set(byWords.results.map((result) => result.continuation_id)).size).toBe(byWords.results.length);
  });

  it('applies the filters, and finds text in other scripts', async () => {
    expect((await searchConversations(deps(), alice, { query: 'outage', tool: 'codereview' })).results).toEqual([]);
    expect((await searchConversations(deps(), alice, { query: 'outage', tool: 'chat' })).results[0]?.continuation_id).toBe(threads.cache);
    expect((await searchConversations(deps(), alice, { query: 'cache outage', model: 'kimi-k2-0905-preview' })).results.map((result) => result.continuation_id)).toEqual([threads.cache]);
    expect((await searchConversations(deps(), alice, { query: 'token', conversationId: threads.cache })).results.every((result) => result.continuation_id === threads.cache)).toBe(true);
    expect((await searchConversations(deps(), alice, { query: 'token', from: new Date(Date.now() + 60_000) })).results).toEqual([]);
    const japanese = await searchConversations(deps(), alice, { query: 'データベースの移行' });
    expect(japanese.results[0]?.continuation_id).toBe(threads.cjk);
    const emoji = await searchConversations(deps(), alice, { query: '🚀' });
    expect(emoji.results[0]?.continuation_id).toBe(threads.cjk);
  });

  it('never shows one user another user\'s conversations, by search or by semantic_search()', async () => {
    const mine = await searchConversations(deps(), bob, { query: 'authentication token expiry refactor middleware' });
    expect(mine.results.map((result) => result.continuation_id)).toEqual([threads.bobAuth]);
    const [vector] = await embedder.embed(['authentication refactor token refresh middleware']);
    const rpc = await asUser(database.db, bob, (tx) =>
      tx.query<{ conversation_id: string }>('SELECT conversation_id FROM exai.semantic_search($1::vector, 0.0, 50)', [`[${vector!.join(',')}]`]),
    );
    expect(new Set(rpc.rows.map((row) => row.conversation_id))).toEqual(new Set([threads.bobAuth]));
    const aliceRpc = await asUser(database.db, alice, (tx) =>
      tx.query<{ conversation_id: string; similarity: number }>('SELECT conversation_id, similarity FROM exai.semantic_search($1::vector, 0.1, 1)', [`[${vector!.join(',')}]`]),
    );
    expect(aliceRpc.rows).toHaveLength(1);
    expect(aliceRpc.rows[0]!.conversation_id).toBe(threads.auth);
    const direct = await asUser(database.db, bob, (tx) => tx.query('SELECT message_id FROM exai.message_embeddings WHERE owner_id = $1', [alice]));
    expect(direct.rows).toEqual([]);
  });

  it('finds the conversations like a given one, and says when it is not indexed yet', async () => {
    const twin = await thread(alice, 'Token refresh again', 'chat', [['The refresh tokens in the authentication middleware never expire.', 'Give the refresh tokens an expiry and rotate them in the middleware.']]);
    await indexPendingMessages(deps());
    const similar = await similarConversations(deps(), alice, threads.auth!);
    expect(similar.mode).toBe('vector');
    expect(similar.results[0]?.continuation_id).toBe(twin);
    expect(similar.results.map((result) => result.continuation_id)).not.toContain(threads.auth);
    expect(similar.results.map((result) => result.continuation_id)).not.toContain(threads.bobAuth);
    await expectExaiError(similarConversations(deps(), bob, threads.auth!));
    const fresh = await thread(alice, 'Fresh', 'chat', [['not indexed yet', 'indeed']]);
    expect((await similarConversations(deps(), alice, fresh)).note).toMatch(/not indexed yet/);
    await indexPendingMessages(deps());
  });

  it('falls back to full text, saying so, when the embedder fails', async () => {
    const down: Embedder = { model: embedder.model, dimensions: embedder.dimensions, local: false, embed: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1')) };
    const answer = await searchConversations({ ...deps(), embedder: down }, alice, { query: 'Redis outage' });
    expect(answer.mode).toBe('full_text');
    expect(answer.note).toMatch(/could not be reached, so these results come from full-text search alone/);
    expect(answer.results[0]?.continuation_id).toBe(threads.cache);
  });

  it('stores nothing when the embedder answers with the wrong dimension', async () => {
    const created = await thread(alice, 'More', 'chat', [['one more question', 'one more answer']]);
    const wrong: Embedder = { model: embedder.model, dimensions: 384, local: true, embed: async (texts) => texts.map(() => [1, 0, 0]) };
    const error = await expectExaiError(indexPendingMessages({ ...deps(), embedder: wrong }));
    expect(error.message).toMatch(/returned a 3-dimensional vector where 384 were expected; nothing was stored/);
    const stored = await asService(database.db, (tx) => tx.query('SELECT 1 FROM exai.message_embeddings e JOIN exai.messages m ON m.id = e.message_id WHERE m.conversation_id = $1', [created]));
    expect(stored.rows).toEqual([]);
  });

  it('refuses empty and huge queries and bad options with clear errors', async () => {
    for (const [input, pattern] of [
      [{ query: '   ' }, /query is empty/],
      [{ query: 'x'.repeat(1001) }, /the limit is 1000/],
      [{ query: 'ok', limit: 0 }, /limit must be/],
      [{ query: 'ok', threshold: 2 }, /threshold must be/],
      [{ query: 'ok', from: new Date('2026-02-01'), to: new Date('2026-01-01') }, /"from" must not be after "to"/],
    ] as const) {
      expect((await expectExaiError(searchConversations(deps(), alice, input))).message).toMatch(pattern);
    }
  });
});
