/**
 * A provider model's HNSW indexes: made at once for a small backlog; for a large one left until
 * it is embedded and then built over all of it (several times faster than inserting every
 * vector into an index), by the indexing job or by `search.reindex`; an invalid leftover of a
 * failed build is built again; a build that cannot succeed leaves the embedding done.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAdminOperation } from '../../src/admin/operations.js';
import type { Cache } from '../../src/cache/types.js';
import { loadConfig } from '../../src/config.js';
import { ConversationStore } from '../../src/conversations/store.js';
import type { Database } from '../../src/db/types.js';
import { ProviderEmbedder } from '../../src/search/embedding-client.js';
import { countPending } from '../../src/search/indexer.js';
import { ensureModelIndex, modelIndexState } from '../../src/search/open-embedder.js';
import { searchConversations } from '../../src/search/search.js';
import { searchJobs } from '../../src/search/search-jobs.js';
import { ensureUser } from '../../src/users/users.js';
import { tempHome } from '../support/cli.js';
import { suiteCleanups } from '../support/cleanups.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { silentLogger, storageBackends, type TestDatabase } from '../support/backends.js';

const options = { cacheTtlMs: 60_000, maxMessageBytes: 1024 * 1024, maxThreadDepth: 20 };

async function modelIndexes(db: Database, model: string): Promise<string[]> {
  const found = await db.query<{ tablename: string }>(
    "SELECT tablename FROM pg_indexes WHERE schemaname = 'exai' AND indexdef LIKE '%USING hnsw%' AND indexdef LIKE $1 ORDER BY tablename",
    [`%'${model}'%`],
  );
  return found.rows.map((row) => row.tablename);
}

describe.each(storageBackends())('a provider model\'s index on $name', (backend) => {
  const cleanups = suiteCleanups();
  let database: TestDatabase;
  let cache: Cache;
  let fake: FakeOpenAI;
  let user: string;
  const embedderFor = (model: string, dimensions = 8) =>
    new ProviderEmbedder({ provider: 'openai-compat', baseUrl: fake.baseUrl, apiKey: 'test-key', model, dimensions, timeoutMs: 5_000 });
  const runJob = (embedder: ProviderEmbedder) =>
    searchJobs({ db: database.db, embedder, logger: silentLogger })[0]!.run({}, { jobId: 'test', retryCount: 0, signal: new AbortController().signal });

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    database = await backend.createDatabase();
    cache = await backend.createCache();
    const store = new ConversationStore(database.db, cache, options, silentLogger);
    user = (await ensureUser(database.db, 'erin')).id;
    for (const topic of ['partitioning the events table', 'rotating refresh tokens', 'retrying webhooks']) {
      const thread = await store.createThread(user, { title: topic, toolName: 'chat' });
      await store.appendTurns(user, thread.id, [
        { role: 'user', content: `How should we go about ${topic}?`, toolName: 'chat' },
        { role: 'assistant', content: `Start ${topic} with a plan and a test.`, toolName: 'chat' },
      ]);
    }
  }, 60_000);

  afterAll(async () => {
    await cache?.close();
    await database?.destroy();
    await fake?.close();
  });

  it('is built at once for a small backlog', async () => {
    expect(await ensureModelIndex(database.db, embedderFor('small-model'), { deferAbove: 100 })).toBe('created');
    expect(await modelIndexes(database.db, 'small-model')).toEqual(['file_chunk_embeddings', 'message_embeddings']);
    expect(await ensureModelIndex(database.db, embedderFor('small-model'), { deferAbove: 100 })).toBe('ready');
  });

  it('builds again an index a failed build left invalid', async () => {
    const [name] = (await database.db.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE schemaname = 'exai' AND tablename = 'message_embeddings' AND indexdef LIKE '%''small-model''%'")).rows;
    await database.db.query(`UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'exai.${name!.indexname}'::regclass`);
    expect(await modelIndexState(database.db, embedderFor('small-model'))).toBe('deferred');
    expect(await ensureModelIndex(database.db, embedderFor('small-model'))).toBe('created');
    const valid = await database.db.query<{ valid: boolean }>(`SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = 'exai.${name!.indexname}'::regclass`);
    expect(valid.rows).toEqual([{ valid: true }]);
    expect(await modelIndexState(database.db, embedderFor('small-model'))).toBe('ready');
  });

  it('is built by the indexing job after a large backlog, and search answers', async () => {
    const embedder = embedderFor('bulk-model');
    expect(await ensureModelIndex(database.db, embedder, { deferAbove: 3 })).toBe('deferred');
    expect(await modelIndexes(database.db, 'bulk-model')).toEqual([]);
    const deps = { db: database.db, embedder, logger: silentLogger };
    await runJob(embedder);
    expect(await countPending(database.db, 'bulk-model')).toBe(0);
    expect(await modelIndexes(database.db, 'bulk-model')).toEqual(['file_chunk_embeddings', 'message_embeddings']);
    const found = await searchConversations(deps, user, { query: 'refresh tokens', signals: 'vector', threshold: 0 });
    expect(found.results.length).toBeGreaterThan(0);
    // Its vectors count too: a start after the index was lost does not rebuild over them in its path.
    for (const name of (await database.db.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%''bulk-model''%'")).rows) {
      await database.db.exec(`DROP INDEX exai.${name.indexname}`);
    }
    expect(await ensureModelIndex(database.db, embedder, { deferAbove: 3 })).toBe('deferred');
  });

  it('keeps the embedding done when the index cannot be built', async () => {
    // pgvector's HNSW takes at most 2,000 dimensions; the vectors themselves store fine.
    const wide = embedderFor('wide-model', 2_001);
    await runJob(wide);
    expect(await countPending(database.db, 'wide-model')).toBe(0);
    expect(await modelIndexes(database.db, 'wide-model')).toEqual([]);
    await expect(ensureModelIndex(database.db, wide)).rejects.toThrow(/HNSW takes at most 2000/);
  });

  it('is built by search.reindex once the backlog is embedded', async () => {
    const env = { EXAI_HOME: tempHome(cleanups), OPENAI_COMPAT_BASE_URL: fake.baseUrl, OPENAI_COMPAT_API_KEY: 'test-key', EXAI_EMBEDDING_PROVIDER: 'openai-compat', EXAI_EMBEDDING_MODEL: 'reindex-model', EXAI_EMBEDDING_DIMENSIONS: '8' };
    const context = { db: database.db, config: loadConfig(env, { cwd: env.EXAI_HOME }), actor: { label: 'test', source: 'test' } };
    expect(await ensureModelIndex(database.db, embedderFor('reindex-model'), { deferAbove: 3 })).toBe('deferred');
    const first = await runAdminOperation(context, 'search.reindex', { batches: 1 });
    expect(first).toMatchObject({ remaining: 0, chunks_remaining: 0, model: 'reindex-model', index: 'created' });
    expect(first.indexed).toBe(6);
    expect(await modelIndexes(database.db, 'reindex-model')).toEqual(['file_chunk_embeddings', 'message_embeddings']);
    expect(await runAdminOperation(context, 'search.reindex', {})).toMatchObject({ indexed: 0, index: 'ready' });
  });
});
