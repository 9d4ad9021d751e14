/** The embedded database's stand-in for autovacuum. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPgliteMaintenance, type Maintenance } from '../../src/db/pglite-maintenance.js';
import { asService } from '../../src/db/session.js';
import { ensureUser } from '../../src/users/users.js';
import { createPgliteDatabase, silentLogger, type TestDatabase } from '../support/backends.js';

describe('embedded database maintenance', () => {
  let database: TestDatabase;
  let maintenance: Maintenance;

  beforeAll(async () => {
    database = await createPgliteDatabase();
    maintenance = startPgliteMaintenance(database.db, silentLogger, 3_600_000);
  });

  afterAll(async () => {
    await maintenance?.stop();
    await database?.destroy();
  });

  const recordedPages = async (table: string) =>
    (await database.db.query<{ relpages: number }>(`SELECT relpages FROM pg_class WHERE oid = 'exai.${table}'::regclass`)).rows[0]!.relpages;

  it('vacuums and analyses the tables that grew, and leaves the others alone', async () => {
    const user = await ensureUser(database.db, 'maintained');
    await asService(database.db, async (tx) => {
      await tx.query('INSERT INTO exai.conversations (owner_id) SELECT $1 FROM generate_series(1, 2000)', [user.id]);
      await tx.query(
        `INSERT INTO exai.messages (conversation_id, owner_id, seq, role, content, idempotency_key)
         SELECT c.id, c.owner_id, g, 'user', repeat('words ', 20), md5(random()::text)
           FROM exai.conversations c, generate_series(1, 2) g WHERE c.owner_id = $1`,
        [user.id],
      );
    });
    expect(await recordedPages('messages')).toBeLessThanOrEqual(0);
    expect((await maintenance.runOnce()).sort()).toEqual(['exai.conversations', 'exai.messages']);
    expect(await recordedPages('messages')).toBeGreaterThan(10);
    // Nothing grew since: nothing to do.
    expect(await maintenance.runOnce()).toEqual([]);
  });
});
