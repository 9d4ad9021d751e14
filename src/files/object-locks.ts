/**
 * Every step that adds or removes a reference to an object key, or deletes its
 * bytes, holds that key's advisory lock for its transaction: the upload that
 * records a row, the purge, the orphan sweep and the processing job. So a key's
 * bytes are deleted only while no one can be adding a row that needs them, and
 * a row is added only after checking the bytes are still there.
 */
import type { Queryable } from '../db/types.js';

export async function lockObjectKey(tx: Queryable, key: string): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [key]);
}

/** Whether some object row keeps these bytes: as the bytes it is stored as, or as its preview. */
export async function isKeyKept(tx: Queryable, key: string): Promise<boolean> {
  const found = await tx.query<{ kept: boolean }>(
    'SELECT EXISTS (SELECT 1 FROM exai.file_objects WHERE stored_key = $1 OR preview_key = $1) AS kept',
    [key],
  );
  return found.rows[0]!.kept;
}
