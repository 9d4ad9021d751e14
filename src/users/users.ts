/** Users: the owners of threads. Created by the service role; each user reads only their own row. */
import { ExaiError } from '../errors.js';
import { asService } from '../db/session.js';
import type { Database } from '../db/types.js';

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

/** Returns the user with this handle, creating it when missing. */
export async function ensureUser(db: Database, handle: string): Promise<User> {
  if (!handlePattern.test(handle)) {
    throw new ExaiError('invalid_argument', `User handle ${JSON.stringify(handle)} is not valid: use lower-case letters, digits, '.', '_' or '-', such as "alice".`);
  }
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
