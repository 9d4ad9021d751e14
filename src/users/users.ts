/** Users: the owners of threads. Created by the service role; each user reads only their own row. */
import { ExaiError } from '../errors.js';
import { asService } from '../db/session.js';
import type { Database } from '../db/types.js';
import { recordAudit, type AuditActor } from '../audit/audit-log.js';

export interface User {
  id: string;
  handle: string;
  displayName: string | null;
  createdAt: string;
}

const handlePattern = /^[a-z0-9][a-z0-9._-]{0,62}$/;

function toUser(row: Record<string, unknown>): User {
  return {
    id: String(row.id),
    handle: String(row.handle),
    displayName: row.display_name === null ? null : String(row.display_name),
    createdAt: (row.created_at as Date).toISOString(),
  };
}

function checkHandle(handle: string): void {
  if (!handlePattern.test(handle)) {
    throw new ExaiError('invalid_argument', `User handle ${JSON.stringify(handle)} is not valid: use lower-case letters, digits, '.', '_' or '-', such as "alice".`);
  }
}

/** Returns the user with this handle, creating it when missing. */
export async function ensureUser(db: Database, handle: string): Promise<User> {
  checkHandle(handle);
  const result = await asService(db, (tx) =>
    tx.query(
      `INSERT INTO exai.users (handle) VALUES ($1)
       ON CONFLICT (handle) DO UPDATE SET handle = EXCLUDED.handle
       RETURNING id, handle, display_name, created_at`,
      [handle],
    ),
  );
  return toUser(result.rows[0]!);
}

export async function findUserByHandle(db: Database, handle: string): Promise<User | undefined> {
  const result = await asService(db, (tx) =>
    tx.query('SELECT id, handle, display_name, created_at FROM exai.users WHERE handle = $1', [handle]),
  );
  const row = result.rows[0];
  return row === undefined ? undefined : toUser(row);
}

/** A user whose id comes from elsewhere (a token's `sub`): created with the id as handle when missing. True if created. */
export async function ensureUserWithId(db: Database, id: string): Promise<boolean> {
  const result = await asService(db, (tx) =>
    tx.query(`INSERT INTO exai.users (id, handle) VALUES ($1::uuid, $1::text) ON CONFLICT DO NOTHING`, [id.toLowerCase()]),
  );
  return result.affectedRows > 0;
}

/** Creates a user; an existing handle is an error. Audited in the same transaction. */
export async function createUser(db: Database, handle: string, displayName: string | undefined, actor: AuditActor): Promise<User> {
  checkHandle(handle);
  if (displayName !== undefined && displayName.length > 200) throw new ExaiError('invalid_argument', 'The display name is longer than 200 characters.');
  return asService(db, async (tx) => {
    const result = await tx.query(
      `INSERT INTO exai.users (handle, display_name) VALUES ($1, $2) ON CONFLICT (handle) DO NOTHING
       RETURNING id, handle, display_name, created_at`,
      [handle, displayName ?? null],
    );
    const row = result.rows[0];
    if (row === undefined) throw new ExaiError('conflict', `A user with handle ${JSON.stringify(handle)} already exists.`);
    const user = toUser(row);
    await recordAudit(tx, actor, { action: 'user.create', target: `user:${handle}`, outcome: 'success', details: { user_id: user.id } });
    return user;
  });
}

export async function listUsers(db: Database): Promise<(User & { activeKeys: number; threads: number })[]> {
  const result = await asService(db, (tx) =>
    tx.query(
      `SELECT u.id, u.handle, u.display_name, u.created_at,
              (SELECT count(*) FROM exai.api_keys k WHERE k.user_id = u.id AND k.revoked_at IS NULL
                  AND (k.expires_at IS NULL OR k.expires_at > now()))::int AS active_keys,
              (SELECT count(*) FROM exai.conversations c WHERE c.owner_id = u.id)::int AS threads
         FROM exai.users u ORDER BY u.handle`,
    ),
  );
  return result.rows.map((row) => ({ ...toUser(row), activeKeys: Number(row.active_keys), threads: Number(row.threads) }));
}

/** Deletes a user with their threads and keys. Audited in the same transaction. */
export async function deleteUser(db: Database, handle: string, actor: AuditActor): Promise<{ threads: number; keys: number }> {
  checkHandle(handle);
  return asService(db, async (tx) => {
    const result = await tx.query<{ id: string; threads: number; keys: number }>(
      `SELECT u.id, (SELECT count(*) FROM exai.conversations c WHERE c.owner_id = u.id)::int AS threads,
              (SELECT count(*) FROM exai.api_keys k WHERE k.user_id = u.id)::int AS keys
         FROM exai.users u WHERE u.handle = $1 FOR UPDATE`,
      [handle],
    );
    const row = result.rows[0];
    if (row === undefined) throw new ExaiError('not_found', `No user with handle ${JSON.stringify(handle)}; \`exai users list\` shows them.`);
    await tx.query('DELETE FROM exai.users WHERE id = $1', [row.id]);
    await recordAudit(tx, actor, {
      action: 'user.delete',
      target: `user:${handle}`,
      outcome: 'success',
      details: { user_id: row.id, threads: row.threads, keys: row.keys },
    });
    return { threads: row.threads, keys: row.keys };
  });
}
