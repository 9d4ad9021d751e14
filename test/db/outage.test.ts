import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices } from '../../src/app/services.js';
import { loadConfig } from '../../src/config.js';
import { ConversationStore } from '../../src/conversations/store.js';
import type { Database } from '../../src/db/types.js';
import { asService } from '../../src/db/session.js';
import { MemoryCache } from '../../src/cache/memory.js';
import { ensureUser } from '../../src/users/users.js';
import { silentLogger, type TestDatabase } from '../support/backends.js';
import { expectExaiError } from '../support/assertions.js';
import { externalBackends } from '../support/env.js';
import type { TcpProxy } from '../support/tcp-proxy.js';
import { startProxiedPostgres, type ProxiedPostgres } from '../support/proxied-postgres.js';


describe.runIf(externalBackends() !== undefined)('PostgreSQL outages', () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let proxied: Database;
  let setup: ProxiedPostgres | undefined;

  beforeAll(async () => {
    setup = await startProxiedPostgres({ poolMax: 4, connectTimeoutMs: 1000, queryTimeoutMs: 800 });
    ({ database, proxy, proxied } = setup);
  });

  afterAll(async () => {
    await setup?.close();
  });

  it('stops start-up with a clear error when the database is unreachable, hiding the password', async () => {
    const config = loadConfig(
      { DATABASE_URL: 'postgresql://exai:hunter2@127.0.0.1:1/exai', DATABASE_CONNECT_TIMEOUT: '1s', EXAI_HOME: '/tmp/exai-unused' },
      { cwd: '/tmp' },
    );
    const error = await expectExaiError(createServices(config, silentLogger, { migrate: true }));
    expect(error.code).toBe('database_unavailable');
    expect(error.message).toMatch(/database is unavailable/i);
    expect(error.message).toContain('DATABASE_URL');
    expect(error.message).not.toContain('hunter2');
  });

  it('fails calls clearly while the database is away, writes nothing half, and recovers', async () => {
    const user = await ensureUser(proxied, 'outage');
    const store = new ConversationStore(proxied, new MemoryCache({ maxEntries: 100, maxBytes: 1 << 20 }), { cacheTtlMs: 60_000, maxMessageBytes: 1 << 20, maxThreadDepth: 10 }, silentLogger);
    const thread = await store.createThread(user.id, { title: 'through the proxy' });
    await store.appendTurn(user.id, thread.id, { role: 'user', content: 'before the outage' });

    await proxy.cut();
    const append = await expectExaiError(store.appendTurn(user.id, thread.id, { role: 'assistant', content: 'during the outage' }));
    expect(append.code).toBe('database_unavailable');
    expect(append.message).not.toMatch(/\n\s+at /);
    const create = await expectExaiError(store.createThread(user.id, { title: 'lost' }));
    expect(create.code).toBe('database_unavailable');

    await proxy.restore();
    // Nothing from the outage was stored, and the thread continues with a gap-free sequence.
    const stored = await asService(database.db, (tx) =>
      tx.query<{ seq: number; content: string }>('SELECT seq, content FROM exai.messages WHERE conversation_id = $1 ORDER BY seq', [thread.id]),
    );
    expect(stored.rows).toEqual([{ seq: 1, content: 'before the outage' }]);
    const titles = await asService(database.db, (tx) => tx.query<{ n: number }>("SELECT count(*)::int AS n FROM exai.conversations WHERE title = 'lost'"));
    expect(titles.rows[0]!.n).toBe(0);
    const after = await store.appendTurn(user.id, thread.id, { role: 'assistant', content: 'after the outage' });
    expect(after.turn.seq).toBe(2);
    const loaded = await store.loadThread(user.id, thread.id);
    expect(loaded.turns.map((turn) => turn.content)).toEqual(['before the outage', 'after the outage']);
  });

  it('fails calls instead of hanging when the network goes silent, and recovers', async () => {
    const user = await ensureUser(proxied, 'silent');
    const store = new ConversationStore(proxied, new MemoryCache({ maxEntries: 100, maxBytes: 1 << 20 }), { cacheTtlMs: 60_000, maxMessageBytes: 1 << 20, maxThreadDepth: 10 }, silentLogger);
    const thread = await store.createThread(user.id, {});
    proxy.silence(true);
    const started = Date.now();
    const failed = await expectExaiError(store.appendTurn(user.id, thread.id, { role: 'user', content: 'into the void', idempotencyKey: 'void-1' }));
    expect(failed.code).toBe('database_unavailable');
    expect(Date.now() - started).toBeLessThan(5000);
    proxy.silence(false);
    await proxy.cut(); // the connections that saw the silence are useless now; new ones are made
    await proxy.restore();
    const retried = await store.appendTurn(user.id, thread.id, { role: 'user', content: 'into the void', idempotencyKey: 'void-1' });
    expect(retried.turn.seq).toBe(1);
    expect((await store.loadThread(user.id, thread.id)).turnCount).toBe(1);
  });
});
