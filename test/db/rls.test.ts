import { createHash, randomUUID } from 'node:crypto';
import { DatabaseMetricsSink } from '../../src/metrics/metrics-store.js';
import { rollUpPending } from '../../src/metrics/rollups.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asService, asUser } from '../../src/db/session.js';
import { ensureUser } from '../../src/users/users.js';
import { createApiKey } from '../../src/auth/api-keys.js';
import { storageBackends, type TestDatabase } from '../support/backends.js';

/** Tables that hold user data, with the column their policies check. */
const userTables = {
  users: 'id',
  conversations: 'owner_id',
  messages: 'owner_id',
  api_keys: 'user_id',
  audit_log: 'actor_id',
  performance_metrics: 'user_id',
  performance_hourly: 'user_id',
  performance_daily: 'user_id',
  file_metadata: 'owner_id',
  provider_files: 'owner_id',
  conversation_files: 'owner_id',
} as const;

/** A content hash and the object key the store files it under. */
function objectKey(label: string): { sha: string; key: string } {
  const sha = createHash('sha256').update(`${label} ${randomUUID()}`).digest('hex');
  return { sha, key: `sha256/${sha}` };
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(Error);
  return (error as Error).message;
}

describe.each(storageBackends())('row-level security on $name', (backend) => {
  let database: TestDatabase;
  let alice: string;
  let bob: string;
  let aliceThread: string;
  let bobThread: string;
  /** Alice's live file, her deleted one, Bob's file, and an object nobody has a file of. */
  const objects = { alice: objectKey('alice'), aliceDeleted: objectKey('alice deleted'), bob: objectKey('bob'), stray: objectKey('stray') };
  let aliceFile: string;
  let bobFile: string;

  beforeAll(async () => {
    database = await backend.createDatabase();
    alice = (await ensureUser(database.db, 'alice')).id;
    bob = (await ensureUser(database.db, 'bob')).id;
    aliceThread = await asUser(database.db, alice, async (tx) => {
      const thread = await tx.query<{ id: string }>("INSERT INTO exai.conversations (title) VALUES ('alice only') RETURNING id");
      const id = thread.rows[0]!.id;
      await tx.query(
        "SELECT * FROM exai.append_turns(jsonb_build_array(jsonb_build_object('ord', 0, 'conversation_id', $1::text, 'role', 'user', 'content', 'private words')))",
        [id],
      );
      return id;
    });
    // A key and the audit row its creation writes: alice's rows in the two security tables.
    await createApiKey(database.db, { userId: alice, scopes: ['tools:call'] }, { userId: alice, label: 'alice', source: 'test' });
    // A recorded call of alice's, raw and rolled up.
    await new DatabaseMetricsSink(database.db).write([
      {
        kind: 'provider', at: new Date(), tool: 'chat', model: 'glm-4.6', provider: 'glm', paramHash: '0123456789abcdef',
        durationMs: 120, timeToFirstTokenMs: 30, inputTokens: 10, outputTokens: 5, costUsd: 0.001, outcome: 'ok',
        errorClass: null, userId: alice, apiKeyId: null, conversationId: aliceThread,
      },
    ]);
    await rollUpPending(database.db);
    // Files are written by the service only (users cannot insert them): alice's file, linked to her
    // thread and uploaded to a provider, a deleted file of hers, bob's file, and an object of no one's.
    bobThread = await asUser(database.db, bob, async (tx) => (await tx.query<{ id: string }>("INSERT INTO exai.conversations (title) VALUES ('bob only') RETURNING id")).rows[0]!.id);
    [aliceFile, bobFile] = await asService(database.db, async (tx) => {
      for (const { key } of Object.values(objects)) {
        await tx.query('INSERT INTO exai.file_objects (storage_key, size, stored_key, stored_size) VALUES ($1, 5, $1, 5)', [key]);
      }
      const file = async (owner: string, object: { sha: string; key: string }, deleted: boolean) =>
        (
          await tx.query<{ id: string }>(
            `INSERT INTO exai.file_metadata (owner_id, bucket, file_path, storage_key, size, mime_type, sha256, deleted_at)
             VALUES ($1, 'user-uploads', 'notes.txt', $2, 5, 'text/plain', $3, CASE WHEN $4 THEN now() END) RETURNING id`,
            [owner, object.key, object.sha, deleted],
          )
        ).rows[0]!.id;
      const alices = await file(alice, objects.alice, false);
      await file(alice, objects.aliceDeleted, true);
      const bobs = await file(bob, objects.bob, false);
      await tx.query("INSERT INTO exai.provider_files (file_id, owner_id, provider, provider_file_id) VALUES ($1, $2, 'kimi', 'file-alice')", [alices, alice]);
      await tx.query('INSERT INTO exai.conversation_files (conversation_id, file_id, owner_id) VALUES ($1, $2, $3)', [aliceThread, alices, alice]);
      return [alices, bobs];
    });
  });

  afterAll(async () => {
    await database?.destroy();
  });

  it('shows another user zero rows of every user table', async () => {
    for (const table of Object.keys(userTables)) {
      const mine = await asUser(database.db, alice, (tx) => tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM exai.${table}`));
      const theirs = await asUser(database.db, bob, (tx) =>
        tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM exai.${table} WHERE ${userTables[table as keyof typeof userTables]} = $1`, [alice]),
      );
      expect(mine.rows[0]!.n, table).toBeGreaterThan(0);
      expect(theirs.rows[0]!.n, table).toBe(0);
    }
    const search = await asUser(database.db, bob, (tx) =>
      tx.query("SELECT id FROM exai.messages WHERE content_tsv @@ to_tsquery('simple', 'private')"),
    );
    expect(search.rows).toEqual([]);
  });

  it('shows usage through the view only for one\u2019s own calls, and alert events to no user', async () => {
    const mine = await asUser(database.db, alice, (tx) => tx.query<{ user_id: string }>('SELECT user_id FROM exai.usage_daily'));
    expect(mine.rows.map((row) => row.user_id)).toEqual([alice]);
    const theirs = await asUser(database.db, bob, (tx) => tx.query('SELECT * FROM exai.usage_daily'));
    expect(theirs.rows).toEqual([]);
    await asService(database.db, (tx) =>
      tx.query("INSERT INTO exai.alert_events (rule, state, observed, threshold) VALUES ('slow', 'firing', 2, 1)"),
    );
    expect(await refusal(asUser(database.db, alice, (tx) => tx.query('SELECT * FROM exai.alert_events')))).toMatch(/permission denied/);
    expect(
      await refusal(asUser(database.db, alice, (tx) => tx.query("INSERT INTO exai.rollup_pending (level, bucket) VALUES ('hour', now())"))),
    ).toMatch(/permission denied/);
  });

  it('lets users neither write metrics nor reach a metrics partition directly', async () => {
    expect(
      await refusal(
        asUser(database.db, bob, (tx) =>
          tx.query("INSERT INTO exai.performance_metrics (at, kind, param_hash, duration_ms, outcome, user_id) VALUES (now(), 'tool', '0123456789abcdef', 1, 'ok', $1)", [bob]),
        ),
      ),
    ).toMatch(/permission denied/);
    const partition = await database.db.query<{ name: string }>(
      "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'exai.performance_metrics'::regclass LIMIT 1",
    );
    expect(partition.rows).toHaveLength(1);
    expect(await refusal(asUser(database.db, alice, (tx) => tx.query(`SELECT * FROM exai.${partition.rows[0]!.name}`)))).toMatch(/permission denied/);
  });

  it('refuses inserts and updates for another owner', async () => {
    expect(
      await refusal(asUser(database.db, bob, (tx) => tx.query('INSERT INTO exai.conversations (owner_id, title) VALUES ($1, $2)', [alice, 'forged']))),
    ).toMatch(/row-level security/);
    expect(
      await refusal(
        asUser(database.db, bob, (tx) =>
          tx.query("INSERT INTO exai.messages (conversation_id, owner_id, seq, role, content) VALUES ($1, $2, 99, 'user', 'forged')", [aliceThread, alice]),
        ),
      ),
    ).toMatch(/row-level security/);
    // Into another user's thread under one's own name: refused exactly as for a thread that does not exist.
    const intoForeign = await refusal(
      asUser(database.db, bob, (tx) =>
        tx.query("INSERT INTO exai.messages (conversation_id, owner_id, seq, role, content) VALUES ($1, $2, 99, 'user', 'forged')", [aliceThread, bob]),
      ),
    );
    const intoUnknown = await refusal(
      asUser(database.db, bob, (tx) =>
        tx.query("INSERT INTO exai.messages (conversation_id, owner_id, seq, role, content) VALUES ($1, $2, 99, 'user', 'forged')", [
          '6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab',
          bob,
        ]),
      ),
    );
    expect(intoForeign).toMatch(/foreign key/);
    expect(intoUnknown).toBe(intoForeign);
    const update = await asUser(database.db, bob, (tx) => tx.query("UPDATE exai.conversations SET title = 'taken' WHERE id = $1", [aliceThread]));
    expect(update.affectedRows).toBe(0);
    const remove = await asUser(database.db, bob, (tx) => tx.query('DELETE FROM exai.messages WHERE conversation_id = $1', [aliceThread]));
    expect(remove.affectedRows).toBe(0);
    // Moving one's own thread to another owner is refused too.
    const own = await asUser(database.db, bob, (tx) => tx.query<{ id: string }>('INSERT INTO exai.conversations DEFAULT VALUES RETURNING id'));
    expect(
      await refusal(asUser(database.db, bob, (tx) => tx.query('UPDATE exai.conversations SET owner_id = $1 WHERE id = $2', [alice, own.rows[0]!.id]))),
    ).toMatch(/row-level security/);
    const title = await asService(database.db, (tx) => tx.query<{ title: string }>('SELECT title FROM exai.conversations WHERE id = $1', [aliceThread]));
    expect(title.rows[0]!.title).toBe('alice only');
  });

  it('lets users neither make, change nor read the secrets of API keys, nor write the audit log', async () => {
    const [key] = (await asService(database.db, (tx) => tx.query<{ id: string }>('SELECT id FROM exai.api_keys WHERE user_id = $1', [alice]))).rows;
    const forged = "INSERT INTO exai.api_keys (user_id, prefix, secret_hash, scopes) VALUES ($1, 'forgedprefix', repeat('a', 64), ARRAY['admin'])";
    expect(await refusal(asUser(database.db, bob, (tx) => tx.query(forged, [bob])))).toMatch(/permission denied/);
    expect(await refusal(asUser(database.db, alice, (tx) => tx.query('UPDATE exai.api_keys SET revoked_at = NULL, scopes = ARRAY[$2] WHERE id = $1', [key!.id, 'admin'])))).toMatch(/permission denied/);
    expect(await refusal(asUser(database.db, alice, (tx) => tx.query('SELECT secret_hash FROM exai.api_keys')))).toMatch(/permission denied/);
    const visible = await asUser(database.db, alice, (tx) => tx.query<{ prefix: string }>('SELECT prefix FROM exai.api_keys'));
    expect(visible.rows).toHaveLength(1);
    const audit = "INSERT INTO exai.audit_log (actor_id, actor, action, outcome) VALUES ($1, 'x', 'forged', 'success')";
    expect(await refusal(asUser(database.db, bob, (tx) => tx.query(audit, [bob])))).toMatch(/permission denied/);
    // Not even the service role may rewrite history.
    expect(await refusal(asService(database.db, (tx) => tx.query("UPDATE exai.audit_log SET outcome = 'failure'")))).toMatch(/permission denied|append-only/);
    expect(await refusal(asService(database.db, (tx) => tx.query('DELETE FROM exai.audit_log')))).toMatch(/permission denied|append-only/);
    expect(await refusal(asService(database.db, (tx) => tx.query('TRUNCATE exai.audit_log')))).toMatch(/permission denied|append-only/);
    // And the table's owner is stopped by the triggers.
    expect(await refusal(database.db.query("UPDATE exai.audit_log SET outcome = 'failure'"))).toMatch(/append-only/);
    expect(await refusal(database.db.query('TRUNCATE exai.audit_log'))).toMatch(/append-only/);
  });

  it('lets users write no file rows, and read an object\u2019s row only through a live file of their own', async () => {
    const forged = `INSERT INTO exai.file_metadata (owner_id, bucket, file_path, storage_key, size, mime_type, sha256)
                    VALUES ($1, 'user-uploads', 'stolen.txt', $2, 5, 'text/plain', $3)`;
    // Naming a hash one does not have would give its bytes: refused outright, not just for other owners.
    expect(await refusal(asUser(database.db, alice, (tx) => tx.query(forged, [alice, objects.bob.key, objects.bob.sha])))).toMatch(/permission denied/);
    expect(await refusal(asUser(database.db, alice, (tx) => tx.query(forged, [alice, objects.stray.key, objects.stray.sha])))).toMatch(/permission denied/);
    const newObject = objectKey('new');
    expect(
      await refusal(asUser(database.db, alice, (tx) => tx.query('INSERT INTO exai.file_objects (storage_key, size, stored_key, stored_size) VALUES ($1, 1, $1, 1)', [newObject.key]))),
    ).toMatch(/permission denied/);
    expect(
      await refusal(asUser(database.db, alice, (tx) => tx.query("INSERT INTO exai.provider_files (file_id, owner_id, provider, provider_file_id) VALUES ($1, $2, 'glm', 'file-x')", [aliceFile, alice]))),
    ).toMatch(/permission denied/);
    // Nor repoint a file of her own at someone else's bytes, or give it away.
    expect(await refusal(asUser(database.db, alice, (tx) => tx.query('UPDATE exai.file_metadata SET storage_key = $2, sha256 = $3 WHERE id = $1', [aliceFile, objects.bob.key, objects.bob.sha])))).toMatch(/permission denied/);
    expect(await refusal(asUser(database.db, alice, (tx) => tx.query('UPDATE exai.file_metadata SET owner_id = $2 WHERE id = $1', [aliceFile, bob])))).toMatch(/permission denied/);

    const objectsSeenBy = async (user: string) =>
      (await asUser(database.db, user, (tx) => tx.query<{ storage_key: string }>('SELECT storage_key FROM exai.file_objects ORDER BY storage_key'))).rows.map((row) => row.storage_key);
    // Not the object of her deleted file, nor bob's, nor one nobody has a file of.
    expect(await objectsSeenBy(alice)).toEqual([objects.alice.key]);
    expect(await objectsSeenBy(bob)).toEqual([objects.bob.key]);
    expect(await refusal(asUser(database.db, alice, (tx) => tx.query('SELECT * FROM exai.file_texts')))).toMatch(/permission denied/);

    // Bob can neither delete her file nor link it into his thread; linking reads as for a file that does not exist.
    const remove = await asUser(database.db, bob, (tx) => tx.query('UPDATE exai.file_metadata SET deleted_at = now() WHERE id = $1', [aliceFile]));
    expect(remove.affectedRows).toBe(0);
    const link = 'INSERT INTO exai.conversation_files (conversation_id, file_id) VALUES ($1, $2)';
    const intoOwn = await refusal(asUser(database.db, bob, (tx) => tx.query(link, [bobThread, aliceFile])));
    const unknown = await refusal(asUser(database.db, bob, (tx) => tx.query(link, [bobThread, randomUUID()])));
    expect(intoOwn).toMatch(/foreign key/);
    expect(unknown).toBe(intoOwn);
    expect(
      await refusal(asUser(database.db, bob, (tx) => tx.query('INSERT INTO exai.conversation_files (conversation_id, file_id, owner_id) VALUES ($1, $2, $3)', [aliceThread, aliceFile, alice]))),
    ).toMatch(/row-level security/);
    // His own file into her thread: refused as for a thread that does not exist.
    const intoHers = await refusal(asUser(database.db, bob, (tx) => tx.query(link, [aliceThread, bobFile])));
    const intoNone = await refusal(asUser(database.db, bob, (tx) => tx.query(link, [randomUUID(), bobFile])));
    expect(intoHers).toMatch(/foreign key/);
    expect(intoNone).toBe(intoHers);
    const links = await asService(database.db, (tx) => tx.query<{ n: number }>('SELECT count(*)::int AS n FROM exai.conversation_files'));
    expect(links.rows[0]!.n).toBe(1);
  });

  it('treats another user\u2019s thread as missing in append_turns', async () => {
    const result = await asUser(database.db, bob, (tx) =>
      tx.query<{ status: string }>(
        "SELECT status FROM exai.append_turns(jsonb_build_array(jsonb_build_object('ord', 0, 'conversation_id', $1::text, 'role', 'user', 'content', 'intrusion')))",
        [aliceThread],
      ),
    );
    expect(result.rows).toEqual([{ status: 'not_found' }]);
    const count = await asService(database.db, (tx) => tx.query<{ n: number }>('SELECT count(*)::int AS n FROM exai.messages WHERE conversation_id = $1', [aliceThread]));
    expect(count.rows[0]!.n).toBe(1);
  });

  it('gives the anon role nothing at all', async () => {
    const message = await refusal(
      database.db.transaction(async (tx) => {
        await tx.query("SELECT set_config('role', 'anon', true)");
        return tx.query('SELECT * FROM exai.conversations');
      }),
    );
    expect(message).toMatch(/permission denied/);
  });

  it('does not leak the user role or claims past the transaction', async () => {
    await asUser(database.db, bob, (tx) => tx.query('SELECT 1'));
    const after = await database.db.query<{ role: string; claims: string | null }>(
      "SELECT current_user AS role, nullif(current_setting('request.jwt.claims', true), '') AS claims",
    );
    expect(after.rows[0]!.role).not.toBe('authenticated');
    expect(after.rows[0]!.claims).toBeNull();
  });

  it('has forced row-level security, a policy and an index for every table in the exai schema', async () => {
    const tables = await database.db.query<{ table: string; enabled: boolean; forced: boolean; policies: number }>(`
      SELECT c.relname AS table, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
             (SELECT count(*)::int FROM pg_policies p WHERE p.schemaname = 'exai' AND p.tablename = c.relname) AS policies
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'exai' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
       ORDER BY c.relname`);
    expect(tables.rows.length).toBeGreaterThanOrEqual(6);
    for (const row of tables.rows) {
      expect(row, row.table).toMatchObject({ enabled: true, forced: true });
      expect(row.policies, row.table).toBeGreaterThan(0);
    }
    for (const [table, column] of Object.entries(userTables)) {
      const indexed = await database.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_index i
           JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
          WHERE n.nspname = 'exai' AND c.relname = $1 AND a.attname = $2`,
        [table, column],
      );
      expect(indexed.rows[0]!.n, `${table}.${column} leads an index`).toBeGreaterThan(0);
    }
  });
});
