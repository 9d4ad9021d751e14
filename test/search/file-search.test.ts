/**
 * Files in search, on both databases: a file's extracted text is cut into
 * chunks and embedded by the indexing job (once per object, however many
 * users hold the bytes), a search finds the conversation the file is linked
 * to by a passage deep inside it, each user sees only their own threads
 * through it, a deleted file stops counting, and a newer extraction replaces
 * the chunks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cache } from '../../src/cache/types.js';
import { ConversationStore } from '../../src/conversations/store.js';
import { asService, asUser } from '../../src/db/session.js';
import { FileHandler } from '../../src/files/file-handler.js';
import { processPendingObjects } from '../../src/files/file-processing.js';
import { MemoryTier } from '../../src/files/tiers/memory-tier.js';
import { TieredReader } from '../../src/files/tiers/tiered-reader.js';
import { chunkPendingTexts, countPendingFileWork, indexPendingFileChunks } from '../../src/search/file-indexer.js';
import { indexPendingMessages } from '../../src/search/indexer.js';
import { LocalHashEmbedder } from '../../src/search/local-embedder.js';
import { searchConversations } from '../../src/search/search.js';
import { ensureUser } from '../../src/users/users.js';
import { silentLogger, storageBackends, type TestDatabase } from '../support/backends.js';
import { localStoreKind, type TestObjectStore } from '../support/object-stores.js';

const options = { cacheTtlMs: 60_000, maxMessageBytes: 1024 * 1024, maxThreadDepth: 20 };

/** A long runbook whose one passage about canary rollouts sits far past the first chunk. */
function runbook(passage: string): Buffer {
  const filler = Array.from({ length: 60 }, (_, index) => `Step ${index}: check the dashboard, note the figures and move on to the next item.`).join('\n\n');
  return Buffer.from(`# Release runbook\n\n${filler}\n\n${passage}\n\n${filler}\n`);
}

describe.each(storageBackends())('files in conversation search on $name', (backend) => {
  let database: TestDatabase;
  let cache: Cache;
  let objects: TestObjectStore;
  let store: ConversationStore;
  let files: FileHandler;
  let alice: string;
  let bob: string;
  const embedder = new LocalHashEmbedder();
  const deps = () => ({ db: database.db, embedder, logger: silentLogger });
  const bytes = runbook('The canary rollout waits until a quorum of health checks has passed in every zone.');

  async function thread(owner: string, title: string): Promise<string> {
    const created = await store.createThread(owner, { title, toolName: 'chat' });
    await store.appendTurns(owner, created.id, [
      { role: 'user', content: 'Please look over the attached release document.', toolName: 'chat' },
      { role: 'assistant', content: 'It reads well; a few steps could be merged.', toolName: 'chat', provider: 'glm', model: 'glm-4.6' },
    ]);
    return created.id;
  }

  async function chunkCount(storageKey: string): Promise<number> {
    const counted = await asService(database.db, (tx) => tx.query<{ n: number }>('SELECT count(*)::int AS n FROM exai.file_chunks WHERE storage_key = $1', [storageKey]));
    return counted.rows[0]!.n;
  }

  beforeAll(async () => {
    database = await backend.createDatabase();
    cache = await backend.createCache();
    objects = await localStoreKind.create();
    store = new ConversationStore(database.db, cache, options, silentLogger);
    const reader = new TieredReader({ memory: new MemoryTier({ maxBytes: 1024 * 1024, maxEntryBytes: 64 * 1024 }), disk: undefined, primary: objects.store });
    files = new FileHandler({ db: database.db, store: objects.store, reader, logger: silentLogger });
    alice = (await ensureUser(database.db, 'alice')).id;
    bob = (await ensureUser(database.db, 'bob')).id;
  });

  afterAll(async () => {
    await cache?.close();
    await objects?.close();
    await database?.destroy();
  });

  it('finds the conversation a file is linked to by a passage deep inside the file, for its owner only', async () => {
    const aliceThread = await thread(alice, 'Release review');
    const bobThread = await thread(bob, 'Bob release review');
    const bobOther = await thread(bob, 'Unrelated');
    const aliceFile = await files.upload({ userId: alice, name: 'runbook.md', body: bytes, conversationId: aliceThread });
    // The same bytes for Bob: one object, chunked and embedded once, but his own file and thread.
    const bobFile = await files.upload({ userId: bob, name: 'bobs-runbook.md', body: bytes, conversationId: bobThread });
    expect(bobFile.file.storageKey).toBe(aliceFile.file.storageKey);
    await processPendingObjects({ db: database.db, store: objects.store, logger: silentLogger });
    await indexPendingMessages(deps());

    const progress = await indexPendingFileChunks(deps(), { batchSize: 4 });
    const chunks = await chunkCount(aliceFile.file.storageKey);
    expect(chunks).toBeGreaterThan(3);
    expect(progress).toEqual({ indexed: chunks, remaining: 0 });
    expect(await indexPendingFileChunks(deps())).toEqual({ indexed: 0, remaining: 0 });

    const found = await searchConversations(deps(), alice, { query: 'canary rollout quorum' });
    expect(found.results).toHaveLength(1);
    expect(found.results[0]).toMatchObject({ continuation_id: aliceThread, file: 'runbook.md' });
    expect(found.results[0]!.matched).toContain('text');
    expect(found.results[0]!.snippet).toMatch(/\*\*canary\*\*/i);
    // By the vectors alone (a short query against a long passage: a low similarity, but the nearest), and with the passage for a prompt.
    const byMeaning = await searchConversations(deps(), alice, { query: 'canary rollouts and quorums', signals: 'vector', threshold: 0.05, withContent: true });
    expect(byMeaning.results[0]).toMatchObject({ continuation_id: aliceThread, file: 'runbook.md' });
    expect(byMeaning.results[0]!.content).toMatch(/^file runbook\.md:\n[\s\S]*quorum of health checks/);
    // Bob finds his own thread through his own file, never Alice's; his other thread has no file.
    const bobs = await searchConversations(deps(), bob, { query: 'canary rollout quorum' });
    expect(bobs.results.map((result) => result.continuation_id)).toEqual([bobThread]);
    expect(bobs.results[0]!.file).toBe('bobs-runbook.md');
    expect(bobs.results.some((result) => result.continuation_id === bobOther)).toBe(false);
    // Filters apply to the file's link: another conversation, or a window before it was linked.
    expect((await searchConversations(deps(), bob, { query: 'canary rollout', conversationId: bobOther })).results).toEqual([]);
    expect((await searchConversations(deps(), bob, { query: 'canary rollout', to: new Date(Date.now() - 3_600_000) })).results).toEqual([]);

    // Alice deletes her file: the passage no longer leads to her thread, while Bob's still does.
    await files.delete(alice, aliceFile.file.id);
    expect((await searchConversations(deps(), alice, { query: 'canary rollout quorum' })).results).toEqual([]);
    expect((await searchConversations(deps(), bob, { query: 'canary rollout quorum' })).results.map((result) => result.continuation_id)).toEqual([bobThread]);
    // Row-level security: with no live file of those bytes, Alice sees none of their chunks or vectors.
    const visible = await asUser(database.db, alice, async (tx) => ({
      chunks: (await tx.query('SELECT 1 FROM exai.file_chunks WHERE storage_key = $1', [aliceFile.file.storageKey])).rows.length,
      vectors: (await tx.query('SELECT 1 FROM exai.file_chunk_embeddings WHERE storage_key = $1', [aliceFile.file.storageKey])).rows.length,
    }));
    expect(visible).toEqual({ chunks: 0, vectors: 0 });
  });

  it('replaces the chunks and their vectors when the text is extracted again', async () => {
    const owner = (await ensureUser(database.db, 'carol')).id;
    const conversation = await thread(owner, 'Carol review');
    const upload = await files.upload({ userId: owner, name: 'notes.md', body: runbook('Blue green deploys switch the router after the smoke tests.'), conversationId: conversation });
    await processPendingObjects({ db: database.db, store: objects.store, logger: silentLogger });
    await indexPendingFileChunks(deps());
    expect((await searchConversations(deps(), owner, { query: 'smoke tests router' })).results[0]?.continuation_id).toBe(conversation);

    await asService(database.db, (tx) =>
      tx.query("UPDATE exai.file_texts SET content = 'Rollbacks restore the previous image within five minutes.', extracted_at = now() WHERE storage_key = $1", [upload.file.storageKey]),
    );
    // The new extraction is pending until cut; the same text extracted again would not be.
    expect(await countPendingFileWork(database.db, embedder.model)).toBe(1);
    const progress = await indexPendingFileChunks(deps());
    expect(progress).toEqual({ indexed: 1, remaining: 0 });
    expect(await chunkCount(upload.file.storageKey)).toBe(1);
    expect((await searchConversations(deps(), owner, { query: 'smoke tests router' })).results).toEqual([]);
    expect((await searchConversations(deps(), owner, { query: 'rollbacks previous image' })).results[0]).toMatchObject({ continuation_id: conversation, file: 'notes.md' });
  });

  it('marks blank texts as chunked, so a run of them never holds up the texts after them', async () => {
    await asService(database.db, async (tx) => {
      for (let index = 0; index < 12; index += 1) {
        const key = `sha256/${index.toString(16).padStart(2, '0').repeat(32)}`;
        await tx.query('INSERT INTO exai.file_objects (storage_key, size, stored_key, stored_size) VALUES ($1, 4, $1, 4)', [key]);
        // Older than any other text: first in the queue. A scanned PDF extracts to page breaks only.
        await tx.query("INSERT INTO exai.file_texts (storage_key, format, content, extracted_at) VALUES ($1, 'pdf', E'\\n\\n \\t\\n', now() - interval '1 day')", [key]);
      }
    });
    const owner = (await ensureUser(database.db, 'dave')).id;
    const conversation = await thread(owner, 'Dave review');
    await files.upload({ userId: owner, name: 'late.md', body: Buffer.from('Quarantined hosts are drained before patching.'), conversationId: conversation });
    await processPendingObjects({ db: database.db, store: objects.store, logger: silentLogger });
    expect(await chunkPendingTexts(database.db)).toBe(13);
    expect(await chunkPendingTexts(database.db)).toBe(0);
    await indexPendingFileChunks(deps());
    expect(await countPendingFileWork(database.db, embedder.model)).toBe(0);
    expect((await searchConversations(deps(), owner, { query: 'quarantined hosts drained' })).results[0]).toMatchObject({ continuation_id: conversation, file: 'late.md' });
  });
});
