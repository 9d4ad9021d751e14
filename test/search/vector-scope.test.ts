/**
 * A user with a small share of a model's HNSW index (which holds every user's
 * vectors) still gets all their matches: the index walk skips other users'
 * rows and gives up after hnsw.max_scan_tuples of them, so the search compares
 * such a user's few vectors directly. semantic_search() shows the starvation
 * here (without migration 0010 it returns none of the user's rows); the search
 * functions' index walk still returns the candidates it passed over, which in
 * a graph this small are all of them, so for them these tests check the direct
 * comparison's answers and that the walk is still right. The limit is lowered
 * here so that a few hundred vectors of another user show what 20,000 (the
 * default) would, and
 * sorts are made dear so that PostgreSQL plans the small table as it
 * would a big one (an index walk, not the owner's rows sorted by distance).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cache } from '../../src/cache/types.js';
import { ConversationStore } from '../../src/conversations/store.js';
import { asUser } from '../../src/db/session.js';
import type { Database } from '../../src/db/types.js';
import { indexPendingMessages } from '../../src/search/indexer.js';
import { LocalHashEmbedder } from '../../src/search/local-embedder.js';
import { searchConversations, similarConversations } from '../../src/search/search.js';
import { ensureUser } from '../../src/users/users.js';
import { silentLogger, storageBackends, type TestDatabase } from '../support/backends.js';

const options = { cacheTtlMs: 60_000, maxMessageBytes: 1024 * 1024, maxThreadDepth: 20 };

describe.each(storageBackends())('vector search for a small share of the index on $name', (backend) => {
  let database: TestDatabase;
  let db: Database;
  let cache: Cache;
  let carol: string;
  let dave: string;
  const carolThreads: string[] = [];
  const daveThreads: string[] = [];
  const embedder = new LocalHashEmbedder();
  const query = 'deploy pipeline rollback';

  beforeAll(async () => {
    database = await backend.createDatabase();
    cache = await backend.createCache();
    const store = new ConversationStore(database.db, cache, options, silentLogger);
    carol = (await ensureUser(database.db, 'carol')).id;
    dave = (await ensureUser(database.db, 'dave')).id;
    // Carol's 600 messages are nearer the query than any of Dave's: they fill the index's nearest.
    for (let thread = 0; thread < 30; thread++) {
      const created = await store.createThread(carol, { title: `Carol ${thread}`, toolName: 'chat' });
      await store.appendTurns(
        carol,
        created.id,
        Array.from({ length: 20 }, (_, turn) => ({ role: turn % 2 === 0 ? ('user' as const) : ('assistant' as const), content: `deploy pipeline rollback ${thread} ${turn}`, toolName: 'chat' })),
      );
      carolThreads.push(created.id);
    }
    for (const topic of ['the release train', 'the database migration owners', 'the on-call handbook']) {
      const created = await store.createThread(dave, { title: `Dave on ${topic}`, toolName: 'chat' });
      await store.appendTurns(dave, created.id, [
        { role: 'user', content: `We talked about the deploy pipeline rollback with ${topic} and wrote down what each team must check first.`, toolName: 'chat' },
        { role: 'assistant', content: `Noted: a rollback of the deploy pipeline for ${topic} needs an owner and a dry run.`, toolName: 'chat' },
      ]);
      daveThreads.push(created.id);
    }
    expect((await indexPendingMessages({ db: database.db, embedder, logger: silentLogger }, { batchSize: 500 })).remaining).toBe(0);
    if (backend.kind === 'postgres') {
      // For every connection of the pool.
      const name = (await database.db.query<{ name: string }>('SELECT current_database() AS name')).rows[0]!.name;
      await database.db.exec(`ALTER DATABASE "${name}" SET hnsw.max_scan_tuples = 20; ALTER DATABASE "${name}" SET enable_sort = off`);
      db = await database.reopen();
    } else {
      // PGlite has one session, which keeps the setting.
      db = database.db;
      await db.exec('SET hnsw.max_scan_tuples = 20; SET enable_sort = off');
    }
    expect((await db.query<{ value: string }>(`SELECT current_setting('hnsw.max_scan_tuples') AS value`)).rows[0]!.value).toBe('20');
  });

  afterAll(async () => {
    await cache?.close();
    await database?.destroy();
  });

  it('finds each of the few threads by meaning, and finds the others like one of them', async () => {
    const found = await searchConversations({ db, embedder, logger: silentLogger }, dave, { query, signals: 'vector', threshold: 0 });
    expect(found.mode).toBe('hybrid');
    expect(found.results.map((result) => result.continuation_id).sort()).toEqual([...daveThreads].sort());

    const similar = await similarConversations({ db, embedder }, dave, daveThreads[0]!, { threshold: 0 });
    expect(similar.results.map((result) => result.continuation_id).sort()).toEqual(daveThreads.slice(1).sort());
  });

  it('walks the index for a scope above the limit, and still finds only the user\'s threads', async () => {
    const deps = { db, embedder, logger: silentLogger, exactScanUpTo: 0 };
    for (const [user, threads] of [[carol, carolThreads], [dave, daveThreads]] as const) {
      const found = await searchConversations(deps, user, { query, signals: 'vector', threshold: 0, limit: 50 });
      expect(found.results.length).toBeGreaterThan(0);
      expect(found.results.every((result) => threads.includes(result.continuation_id))).toBe(true);
    }
    const similar = await similarConversations(deps, carol, carolThreads[0]!, { threshold: 0, limit: 50 });
    expect(similar.results).toHaveLength(carolThreads.length - 1);
  });

  it('answers semantic_search() with the few messages too', async () => {
    const [vector] = await embedder.embed([query]);
    const rows = await asUser(db, dave, (tx) =>
      tx.query<{ conversation_id: string }>('SELECT conversation_id FROM exai.semantic_search($1::vector, 0.0, 10)', [`[${vector!.join(',')}]`]),
    );
    expect(rows.rows).toHaveLength(6);
    expect(new Set(rows.rows.map((row) => row.conversation_id))).toEqual(new Set(daveThreads));
  });
});
