import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cache } from '../../src/cache/types.js';
import { ConversationStore } from '../../src/conversations/store.js';
import { asService } from '../../src/db/session.js';
import { ensureUser } from '../../src/users/users.js';
import { expectExaiError } from '../support/assertions.js';
import { silentLogger, storageBackends, type TestDatabase } from '../support/backends.js';

const options = { cacheTtlMs: 60_000, maxMessageBytes: 4096, maxThreadDepth: 5 };


describe.each(storageBackends())('conversation store on $name', (backend) => {
  let database: TestDatabase;
  let cache: Cache;
  let store: ConversationStore;
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    database = await backend.createDatabase();
    cache = await backend.createCache();
    store = new ConversationStore(database.db, cache, options, silentLogger);
    alice = (await ensureUser(database.db, 'alice')).id;
    bob = (await ensureUser(database.db, 'bob')).id;
  });

  afterAll(async () => {
    await cache?.close();
    await database?.destroy();
  });

  it('creates a thread, appends turns and loads them back in order', async () => {
    const thread = await store.createThread(alice, { title: 'auth refactor', toolName: 'chat', metadata: { origin: 'test' } });
    expect(thread).toMatchObject({ ownerId: alice, title: 'auth refactor', toolName: 'chat', status: 'active', turnCount: 0 });
    const first = await store.appendTurn(alice, thread.id, { role: 'user', content: 'How should the token refresh work?', files: ['src/auth.ts'] });
    const second = await store.appendTurn(alice, thread.id, {
      role: 'assistant',
      content: 'Rotate refresh tokens on use.',
      provider: 'kimi',
      model: 'kimi-k2-0905-preview',
      reasoningContent: 'The user asks about refresh…',
      inputTokens: 12,
      outputTokens: 7,
    });
    expect([first.turn.seq, second.turn.seq]).toEqual([1, 2]);
    expect(first.deduplicated).toBe(false);

    const loaded = await store.loadThread(alice, thread.id);
    expect(loaded.turnCount).toBe(2);
    expect(loaded.turns.map((turn) => turn.content)).toEqual(['How should the token refresh work?', 'Rotate refresh tokens on use.']);
    expect(loaded.turns[0]!.files).toEqual(['src/auth.ts']);
    expect(loaded.turns[1]).toMatchObject({ provider: 'kimi', model: 'kimi-k2-0905-preview', reasoningContent: 'The user asks about refresh…', inputTokens: 12, outputTokens: 7 });
  });

  it('returns the same thread from the cache and from Postgres', async () => {
    const thread = await store.createThread(alice, { title: 'same either way' });
    for (let index = 0; index < 5; index += 1) await store.appendTurn(alice, thread.id, { role: index % 2 ? 'assistant' : 'user', content: `turn ${index}` });
    const first = await store.loadThread(alice, thread.id);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the fill is not awaited by loadThread
    expect(await cache.getLog(`thread:${alice}:${thread.id}`)).toBeDefined();
    const cached = await store.loadThread(alice, thread.id);
    await cache.deleteLog(`thread:${alice}:${thread.id}`);
    const fromDatabase = await store.loadThread(alice, thread.id);
    expect(cached.turns).toEqual(fromDatabase.turns);
    expect(first.turns).toEqual(fromDatabase.turns);
    expect(cached.turnCount).toBe(fromDatabase.turnCount);
  });

  it('does not duplicate a retried append with the same idempotency key', async () => {
    const thread = await store.createThread(alice, {});
    const original = await store.appendTurn(alice, thread.id, { role: 'user', content: 'once', idempotencyKey: 'req-1' });
    const retried = await store.appendTurn(alice, thread.id, { role: 'user', content: 'once', idempotencyKey: 'req-1' });
    expect(retried.deduplicated).toBe(true);
    expect(retried.turn.id).toBe(original.turn.id);
    // Retries racing each other still store one turn.
    const racing = await Promise.all(
      Array.from({ length: 10 }, () => store.appendTurn(alice, thread.id, { role: 'assistant', content: 'reply', idempotencyKey: 'req-2' })),
    );
    expect(new Set(racing.map((result) => result.turn.id)).size).toBe(1);
    expect(racing.filter((result) => !result.deduplicated)).toHaveLength(1);
    const loaded = await store.loadThread(alice, thread.id);
    expect(loaded.turns.map((turn) => turn.content)).toEqual(['once', 'reply']);
  });

  it('keeps a gap-free sequence under concurrent appends from many writers', async () => {
    const thread = await store.createThread(alice, {});
    const other = await store.createThread(bob, {});
    const writes = Array.from({ length: 60 }, (_, index) =>
      index % 3 === 2
        ? store.appendTurn(bob, other.id, { role: 'user', content: `bob ${index}` })
        : store.appendTurn(alice, thread.id, { role: 'user', content: `alice ${index}` }),
    );
    const results = await Promise.all(writes);
    const aliceSeqs = results.filter((_, index) => index % 3 !== 2).map((result) => result.turn.seq).sort((a, b) => a - b);
    expect(aliceSeqs).toEqual(Array.from({ length: 40 }, (_, index) => index + 1));
    const loaded = await store.loadThread(alice, thread.id);
    expect(loaded.turns.map((turn) => turn.seq)).toEqual(aliceSeqs);
    expect(loaded.turnCount).toBe(40);
    // The database agrees with the cache.
    await cache.deleteLog(`thread:${alice}:${thread.id}`);
    expect((await store.loadThread(alice, thread.id)).turns.map((turn) => turn.content)).toEqual(loaded.turns.map((turn) => turn.content));
    expect((await store.loadThread(bob, other.id)).turnCount).toBe(20);
  });

  it('appends a question and its answer together, adjacent even among concurrent appends', async () => {
    const thread = await store.createThread(alice, {});
    const pairs = Array.from({ length: 8 }, (_, index) =>
      store.appendTurns(alice, thread.id, [
        { role: 'user', content: `question ${index}` },
        { role: 'assistant', content: `answer ${index}`, model: 'glm-4.6' },
      ]),
    );
    const singles = Array.from({ length: 8 }, (_, index) => store.appendTurn(alice, thread.id, { role: 'user', content: `note ${index}` }));
    const [pairResults] = await Promise.all([Promise.all(pairs), Promise.all(singles)]);
    for (const [question, answer] of pairResults) expect(answer!.turn.seq).toBe(question!.turn.seq + 1);
    const loaded = await store.loadThread(alice, thread.id);
    expect(loaded.turns.map((turn) => turn.seq)).toEqual(Array.from({ length: 24 }, (_, index) => index + 1));
    const bad = await expectExaiError(store.appendTurns(alice, thread.id, [{ role: 'user', content: 'fine' }, { role: 'nobody', content: 'bad' }]));
    expect(bad.code).toBe('invalid_argument');
    expect((await store.loadThread(alice, thread.id)).turnCount).toBe(24); // neither was stored
  });

  it('fails one bad append in a batch without failing the others', async () => {
    const thread = await store.createThread(alice, {});
    const outcomes = await Promise.allSettled([
      store.appendTurn(alice, thread.id, { role: 'user', content: 'good 1' }),
      store.appendTurn(alice, '00000000-0000-4000-8000-000000000000', { role: 'user', content: 'to nowhere' }),
      store.appendTurn(alice, thread.id, { role: 'user', content: 'good 2' }),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    // Concurrent appends may commit in either order; both are stored, gap-free.
    const loaded = await store.loadThread(alice, thread.id);
    expect(loaded.turns.map((turn) => turn.content).sort()).toEqual(['good 1', 'good 2']);
    expect(loaded.turns.map((turn) => turn.seq)).toEqual([1, 2]);
  });

  it('answers a malformed continuation id with a clear error naming it', async () => {
    const error = await expectExaiError(store.loadThread(alice, 'not-a-uuid'));
    expect(error.code).toBe('invalid_argument');
    expect(error.message).toContain('"not-a-uuid"');
    expect(error.message).not.toMatch(/\n\s+at /);
    const append = await expectExaiError(store.appendTurn(alice, '1234', { role: 'user', content: 'x' }));
    expect(append.code).toBe('invalid_argument');
  });

  it('answers an unknown continuation id and another user\u2019s id identically', async () => {
    const unknown = '6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab';
    const mine = await store.createThread(alice, { title: 'private' });
    await store.appendTurn(alice, mine.id, { role: 'user', content: 'secret' });
    const missing = await expectExaiError(store.loadThread(bob, unknown));
    const foreign = await expectExaiError(store.loadThread(bob, mine.id));
    expect(missing.code).toBe('not_found');
    expect(foreign.code).toBe('not_found');
    expect(foreign.message.replace(mine.id, 'ID')).toBe(missing.message.replace(unknown, 'ID'));
    const foreignAppend = await expectExaiError(store.appendTurn(bob, mine.id, { role: 'user', content: 'intrusion' }));
    expect(foreignAppend.code).toBe('not_found');
    expect((await store.loadThread(alice, mine.id)).turns.map((turn) => turn.content)).toEqual(['secret']);
  });

  it('refuses a message over the size limit and stores nothing', async () => {
    const thread = await store.createThread(alice, {});
    const error = await expectExaiError(store.appendTurn(alice, thread.id, { role: 'user', content: 'x'.repeat(5000) }));
    expect(error.code).toBe('too_large');
    expect(error.message).toContain('EXAI_MAX_MESSAGE_BYTES');
    const multibyte = await expectExaiError(store.appendTurn(alice, thread.id, { role: 'user', content: 'é'.repeat(2100) }));
    expect(multibyte.code).toBe('too_large');
    const loaded = await store.loadThread(alice, thread.id);
    expect(loaded.turnCount).toBe(0);
    const count = await asService(database.db, (tx) => tx.query<{ n: number }>('SELECT count(*)::int AS n FROM exai.messages WHERE conversation_id = $1', [thread.id]));
    expect(count.rows[0]!.n).toBe(0);
  });

  it('rejects bad turn fields with messages that say what to fix', async () => {
    const thread = await store.createThread(alice, {});
    const role = await expectExaiError(store.appendTurn(alice, thread.id, { role: 'robot', content: 'x' }));
    expect(role.message).toContain('role: must be one of system, user, assistant, tool');
    const nul = await expectExaiError(store.appendTurn(alice, thread.id, { role: 'user', content: 'a\u0000b' }));
    expect(nul.message).toContain('NUL');
    const loneSurrogate = await expectExaiError(store.appendTurn(alice, thread.id, { role: 'user', content: 'broken \ud800 pair' }));
    expect(loneSurrogate.message).toContain('content: must be valid Unicode text');
    const surrogateInMetadata = await expectExaiError(
      store.appendTurn(alice, thread.id, { role: 'user', content: 'x', metadata: { note: ['ok', '\udc00'] } }),
    );
    expect(surrogateInMetadata.code).toBe('invalid_argument');
    const hugeMetadata = await expectExaiError(store.appendTurn(alice, thread.id, { role: 'user', content: 'x', metadata: { blob: 'x'.repeat(70_000) } }));
    expect(hugeMetadata.message).toContain('metadata: must be at most 65536 bytes');
    const tokens = await expectExaiError(store.appendTurn(alice, thread.id, { role: 'user', content: 'x', inputTokens: 2 ** 31 }));
    expect(tokens.message).toContain('inputTokens: must be below 2^31');
    const extra = await expectExaiError(store.appendTurn(alice, thread.id, { role: 'user', content: 'x', colour: 'blue' }));
    expect(extra.code).toBe('invalid_argument');
    expect((await store.loadThread(alice, thread.id)).turnCount).toBe(0);
  });

  it('lists a user\u2019s threads newest first, page by page, and only theirs', async () => {
    const fresh = await ensureUser(database.db, 'carol');
    const created: string[] = [];
    for (let index = 0; index < 5; index += 1) {
      const thread = await store.createThread(fresh.id, { title: `t${index}` });
      await store.appendTurn(fresh.id, thread.id, { role: 'user', content: `hello ${index}` });
      created.push(thread.id);
    }
    const first = await store.listThreads(fresh.id, { limit: 2 });
    expect(first.threads.map((thread) => thread.title)).toEqual(['t4', 't3']);
    expect(first.nextCursor).toBeDefined();
    const second = await store.listThreads(fresh.id, { limit: 2, before: first.nextCursor! });
    const third = await store.listThreads(fresh.id, { limit: 2, before: second.nextCursor! });
    expect([...second.threads, ...third.threads].map((thread) => thread.title)).toEqual(['t2', 't1', 't0']);
    expect(third.nextCursor).toBeUndefined();
    const others = await store.listThreads(bob, { limit: 200 });
    expect(others.threads.some((thread) => created.includes(thread.id))).toBe(false);
    const badCursor = await expectExaiError(store.listThreads(fresh.id, { before: 'garbage' }));

    // Threads updated microseconds apart (as concurrent creates are) are each listed exactly once.
    const dense = await ensureUser(database.db, 'dense');
    await asService(database.db, (tx) =>
      tx.query(
        `INSERT INTO exai.conversations (owner_id, title, updated_at)
         SELECT $1, 'd' || g, timestamptz '2026-01-01 00:00:00.000100+00' + g * interval '100 microseconds'
           FROM generate_series(1, 6) g`,
        [dense.id],
      ),
    );
    const seen: string[] = [];
    let before: string | undefined;
    do {
      const page = await store.listThreads(dense.id, before === undefined ? { limit: 1 } : { limit: 1, before });
      seen.push(...page.threads.map((thread) => thread.title ?? ''));
      before = page.nextCursor;
    } while (before !== undefined);
    expect(seen).toEqual(['d6', 'd5', 'd4', 'd3', 'd2', 'd1']);
    expect(badCursor.code).toBe('invalid_argument');
  });

  it('walks parent chains up to the depth limit and stops at cycles', async () => {
    const ids: string[] = [];
    let parent: string | undefined;
    for (let index = 0; index < 8; index += 1) {
      const thread = await store.createThread(alice, parent === undefined ? {} : { parentId: parent });
      ids.push(thread.id);
      parent = thread.id;
    }
    const chain = await store.threadChain(alice, ids[7]!);
    expect(chain.ids).toEqual(ids.slice(2).reverse()); // itself plus 5 ancestors
    expect(chain.truncated).toBe(true);
    expect(chain.cycle).toBe(false);
    const short = await store.threadChain(alice, ids[1]!);
    expect(short).toEqual({ ids: [ids[1], ids[0]], truncated: false, cycle: false });

    // A cycle can only be made behind the API's back; the walk must still end.
    const a = await store.createThread(alice, {});
    const b = await store.createThread(alice, { parentId: a.id });
    await asService(database.db, (tx) => tx.query('UPDATE exai.conversations SET parent_id = $1 WHERE id = $2', [b.id, a.id]));
    const cyclic = await store.threadChain(alice, b.id);
    expect(cyclic.cycle).toBe(true);
    expect(cyclic.ids).toEqual([b.id, a.id]);
  });

  it('refuses a parent that is unknown or belongs to another user, alike', async () => {
    const foreign = await store.createThread(bob, {});
    const unknownError = await expectExaiError(store.createThread(alice, { parentId: '6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab' }));
    const foreignError = await expectExaiError(store.createThread(alice, { parentId: foreign.id }));
    expect(unknownError.code).toBe('not_found');
    expect(foreignError.code).toBe('not_found');
  });

  it('continues a thread after the cache entry expires', async () => {
    const shortLived = new ConversationStore(database.db, cache, { ...options, cacheTtlMs: 1000 }, silentLogger);
    const thread = await shortLived.createThread(alice, {});
    await shortLived.appendTurn(alice, thread.id, { role: 'user', content: 'before expiry' });
    await shortLived.loadThread(alice, thread.id);
    await new Promise((resolve) => setTimeout(resolve, 1300));
    expect(await cache.getLog(`thread:${alice}:${thread.id}`)).toBeUndefined();
    await shortLived.appendTurn(alice, thread.id, { role: 'assistant', content: 'after expiry' });
    const loaded = await shortLived.loadThread(alice, thread.id);
    expect(loaded.turns.map((turn) => turn.content)).toEqual(['before expiry', 'after expiry']);
  });

  it('continues a thread after a restart with an empty cache', async () => {
    const thread = await store.createThread(alice, { title: 'survives restarts' });
    await store.appendTurn(alice, thread.id, { role: 'user', content: 'before restart' });
    const db = await database.reopen();
    const freshCache = await backend.createCache();
    try {
      const restarted = new ConversationStore(db, freshCache, options, silentLogger);
      await restarted.appendTurn(alice, thread.id, { role: 'assistant', content: 'after restart' });
      const loaded = await restarted.loadThread(alice, thread.id);
      expect(loaded.title).toBe('survives restarts');
      expect(loaded.turns.map((turn) => `${turn.seq}:${turn.content}`)).toEqual(['1:before restart', '2:after restart']);
    } finally {
      await freshCache.close();
      store = new ConversationStore(db, cache, options, silentLogger);
    }
  });

  it('never lets a load that raced a deletion or an archiving put the old thread back in the cache', async () => {
    // The same cache, with fills that arrive late, as over a slow network: the racing load read the
    // old state, the change commits and invalidates, and only then does the old copy reach the cache.
    const lateFills = new Proxy(cache, {
      get(target, property) {
        if (property === 'fillLog') {
          return async (...args: Parameters<Cache['fillLog']>) => {
            await new Promise((resolve) => setTimeout(resolve, 100));
            return target.fillLog(...args);
          };
        }
        const value = Reflect.get(target, property, target) as unknown;
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const racingStore = new ConversationStore(database.db, lateFills, options, silentLogger);
    for (const change of ['archive', 'delete'] as const) {
      const thread = await store.createThread(alice, {});
      await store.appendTurn(alice, thread.id, { role: 'user', content: 'soon changed' });
      expect((await racingStore.loadThread(alice, thread.id)).status).toBe('active'); // its fill is on the way
      if (change === 'archive') await store.setStatus(alice, thread.id, 'archived');
      else await store.deleteThread(alice, thread.id);
      await new Promise((resolve) => setTimeout(resolve, 200)); // the late fill has been tried by now
      if (change === 'archive') expect((await store.loadThread(alice, thread.id)).status).toBe('archived');
      else expect((await expectExaiError(store.loadThread(alice, thread.id))).code).toBe('not_found');
    }
  });

  it('archives and deletes threads, and forgets their cached copies', async () => {
    const thread = await store.createThread(alice, {});
    await store.appendTurn(alice, thread.id, { role: 'user', content: 'x' });
    await store.loadThread(alice, thread.id);
    expect((await store.setStatus(alice, thread.id, 'archived')).status).toBe('archived');
    expect((await store.loadThread(alice, thread.id)).status).toBe('archived');
    expect((await store.listThreads(alice, { status: 'archived' })).threads.map((t) => t.id)).toContain(thread.id);
    const foreign = await expectExaiError(store.deleteThread(bob, thread.id));
    expect(foreign.code).toBe('not_found');
    await store.deleteThread(alice, thread.id);
    expect((await expectExaiError(store.loadThread(alice, thread.id))).code).toBe('not_found');
  });
});
