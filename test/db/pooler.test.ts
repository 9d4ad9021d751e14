/**
 * Through a transaction-mode pooler (pgbouncer, as Supabase's Supavisor on
 * port 6543): every transaction may land on another server connection, so
 * nothing may rely on session state. Few server connections, many clients.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCache } from '../../src/cache/memory.js';
import { ConversationStore } from '../../src/conversations/store.js';
import { migrate } from '../../src/db/migrate.js';
import { openPostgres } from '../../src/db/postgres.js';
import { asUser } from '../../src/db/session.js';
import type { Database } from '../../src/db/types.js';
import { ensureUser } from '../../src/users/users.js';
import { expectExaiError } from '../support/assertions.js';
import { createPostgresDatabase, silentLogger, type TestDatabase } from '../support/backends.js';
import { externalBackends } from '../support/env.js';
import { pgbouncerBinary, startPgbouncer, type Pgbouncer } from '../support/pgbouncer.js';

const required = externalBackends() !== undefined;

describe.runIf(required)('PostgreSQL through a transaction-mode pooler', () => {
  let database: TestDatabase;
  let pooler: Pgbouncer;
  const pools: Database[] = [];

  beforeAll(async () => {
    expect(pgbouncerBinary, 'pgbouncer must be installed where TEST_DATABASE_URL is set (.ci/run installs it)').toBeDefined();
    database = await createPostgresDatabase({ migrated: false });
    pooler = await startPgbouncer(database.location, 2);
    for (let index = 0; index < 3; index += 1) {
      pools.push(await openPostgres({ url: pooler.through(database.location), poolMax: 8, connectTimeoutMs: 5000, logger: silentLogger }));
    }
  });

  afterAll(async () => {
    for (const pool of pools) await pool.close();
    await pooler?.stop();
    await database?.destroy();
  });

  it('migrates through the pooler, from several instances at once', async () => {
    await Promise.all(pools.map((pool) => migrate(pool)));
    const versions = await pools[0]!.query<{ n: number }>('SELECT count(*)::int AS n FROM exai.schema_version');
    expect(versions.rows[0]!.n).toBeGreaterThanOrEqual(2);
  });

  it('keeps users apart and sequences gap-free while server connections are shared', async () => {
    const [first, second, third] = pools as [Database, Database, Database];
    const alice = await ensureUser(first, 'alice');
    const bob = await ensureUser(second, 'bob');
    const options = { cacheTtlMs: 60_000, maxMessageBytes: 1 << 20, maxThreadDepth: 10 };
    const stores = pools.map((pool) => new ConversationStore(pool, new MemoryCache({ maxEntries: 100, maxBytes: 1 << 24 }), options, silentLogger));
    const aliceThread = await stores[0]!.createThread(alice.id, { title: 'alice' });
    const bobThread = await stores[1]!.createThread(bob.id, { title: 'bob' });

    const writes = Array.from({ length: 60 }, (_, index) => {
      const store = stores[index % 3]!;
      return index % 2 === 0
        ? store.appendTurn(alice.id, aliceThread.id, { role: 'user', content: `alice ${index}` })
        : store.appendTurn(bob.id, bobThread.id, { role: 'user', content: `bob ${index}` });
    });
    // Interleave plain service queries that would notice leaked role or claims.
    const probes = Array.from({ length: 30 }, () =>
      third.query<{ role: string; claims: string | null }>("SELECT current_user AS role, nullif(current_setting('request.jwt.claims', true), '') AS claims"),
    );
    await Promise.all(writes);
    for (const probe of await Promise.all(probes)) {
      expect(probe.rows[0]!.role).not.toBe('authenticated');
      expect(probe.rows[0]!.claims).toBeNull();
    }

    const aliceLoaded = await stores[2]!.loadThread(alice.id, aliceThread.id);
    expect(aliceLoaded.turns.map((turn) => turn.seq)).toEqual(Array.from({ length: 30 }, (_, index) => index + 1));
    expect(aliceLoaded.turns.every((turn) => turn.content.startsWith('alice'))).toBe(true);
    const bobSees = await asUser(third, bob.id, (tx) => tx.query('SELECT id FROM exai.messages WHERE conversation_id = $1', [aliceThread.id]));
    expect(bobSees.rows).toEqual([]);
    expect((await expectExaiError(stores[1]!.loadThread(bob.id, aliceThread.id))).code).toBe('not_found');
  });
});
