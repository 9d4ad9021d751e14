/**
 * Removing what no one needs any more, safely against uploads running at the
 * same moment:
 * - `purgeDeletedFiles`: rows soft-deleted longer than the grace period go (and
 *   the copies Kimi and GLM hold of them), and with them each object no row
 *   refers to. The object's row is locked while its
 *   bytes are deleted, so an upload of the same bytes either waits and re-checks
 *   (see FileHandler.record) or finds the object still referenced.
 * - `sweepOrphanObjects`: objects in the store that no object row keeps (a
 *   crash between writing the bytes and writing the rows; the plain copy of a
 *   file now kept gzipped), and temporary uploads.
 */
import { asService } from '../db/session.js';
import type { Database } from '../db/types.js';
import type { Logger } from '../logger.js';
import type { ObjectReader } from './file-handler.js';
import type { ProviderFiles } from './provider-files.js';
import type { ObjectStore } from './storage/object-store.js';
import { isKeyKept, lockObjectKey } from './object-locks.js';

export interface CleanupDeps {
  db: Database;
  store: ObjectStore;
  reader?: Pick<ObjectReader, 'forget'>;
  /** Deletes the copies Kimi and GLM hold of purged files. */
  providerFiles?: Pick<ProviderFiles, 'deleteCopy'>;
  logger: Logger;
}

export interface PurgeResult {
  rows: number;
  objects: number;
}

const batch = 100;

export async function purgeDeletedFiles(deps: CleanupDeps, options: { graceMs: number; signal?: AbortSignal }): Promise<PurgeResult> {
  const { db, store } = deps;
  const cutoff = new Date(Date.now() - options.graceMs);
  const result: PurgeResult = { rows: 0, objects: 0 };
  for (;;) {
    // The provider copies of the rows going (their provider_files rows go with them, by cascade).
    const removed = await asService(db, (tx) =>
      tx.query<{ n: number; providers: { provider: string; provider_file_id: string }[] }>(
        `WITH doomed AS (
           SELECT id FROM exai.file_metadata WHERE deleted_at IS NOT NULL AND deleted_at < $1 LIMIT ${batch} FOR UPDATE SKIP LOCKED),
         copies AS (
           SELECT p.provider, p.provider_file_id FROM exai.provider_files p JOIN doomed d ON d.id = p.file_id),
         gone AS (
           DELETE FROM exai.file_metadata m USING doomed d WHERE m.id = d.id RETURNING m.id)
         SELECT (SELECT count(*) FROM gone)::int AS n, (SELECT coalesce(json_agg(copies), '[]'::json) FROM copies) AS providers`,
        [cutoff],
      ),
    );
    const { n, providers } = removed.rows[0]!;
    result.rows += n;
    for (const copy of providers) await deps.providerFiles?.deleteCopy(copy.provider, copy.provider_file_id);
    if (n < batch || options.signal?.aborted === true) break;
  }
  for (;;) {
    if (options.signal?.aborted === true) break;
    const unused = await asService(db, (tx) =>
      tx.query<{ storage_key: string }>(
        `SELECT o.storage_key FROM exai.file_objects o
          WHERE o.referenced_at < $1 AND NOT EXISTS (SELECT 1 FROM exai.file_metadata m WHERE m.storage_key = o.storage_key)
          LIMIT ${batch}`,
        [cutoff],
      ),
    );
    let purged = 0;
    for (const { storage_key: key } of unused.rows) {
      const gone = await asService(db, async (tx) => {
        // The key's lock before the row's, in the order uploads and the processing job take them.
        await lockObjectKey(tx, key);
        // SKIP LOCKED: an upload holding this object's row is using it; leave it for the next run.
        const locked = await tx.query<{ stored_key: string; preview_key: string | null }>(
          `SELECT stored_key, preview_key FROM exai.file_objects o WHERE storage_key = $1 AND referenced_at < $2
              AND NOT EXISTS (SELECT 1 FROM exai.file_metadata m WHERE m.storage_key = o.storage_key)
              FOR UPDATE SKIP LOCKED`,
          [key, cutoff],
        );
        const row = locked.rows[0];
        if (row === undefined) return false;
        await tx.query('DELETE FROM exai.file_objects WHERE storage_key = $1', [key]);
        // Keys may be shared (a preview or a gzip can equal another object's bytes): each goes only when no
        // other row keeps it, decided and done under its lock. Bytes before commit: a failure leaves the row.
        const keys = [...new Set([key, row.stored_key, ...(row.preview_key === null ? [] : [row.preview_key])])].sort();
        for (const candidate of keys) {
          await lockObjectKey(tx, candidate);
          if (!(await isKeyKept(tx, candidate))) await store.delete(candidate);
        }
        return true;
      });
      if (gone) {
        purged += 1;
        await deps.reader?.forget(key);
      }
    }
    result.objects += purged;
    if (unused.rows.length < batch || purged === 0) break;
  }
  if (result.rows + result.objects > 0) deps.logger.info(result, 'deleted files purged');
  return result;
}

/** Objects older than `graceMs` that no object row names, and temporary uploads as old; returns how many went. */
export async function sweepOrphanObjects(deps: CleanupDeps, options: { graceMs: number; signal?: AbortSignal }): Promise<{ objects: number; temporary: number }> {
  const { db, store } = deps;
  let objects = 0;
  let candidates: string[] = [];
  const check = async () => {
    const known = await asService(db, (tx) =>
      tx.query<{ key: string }>(
        `SELECT k AS key FROM unnest($1::text[]) AS k
          WHERE EXISTS (SELECT 1 FROM exai.file_objects o WHERE o.stored_key = k OR o.preview_key = k)`,
        [candidates],
      ),
    );
    const referenced = new Set(known.rows.map((row) => row.key));
    for (const key of candidates) {
      if (referenced.has(key)) continue;
      // Checked again under the key's lock: an upload may have recorded a row for these bytes since.
      const deleted = await asService(db, async (tx) => {
        await lockObjectKey(tx, key);
        if (await isKeyKept(tx, key)) return false;
        await store.delete(key);
        return true;
      });
      if (!deleted) continue;
      await deps.reader?.forget(key);
      objects += 1;
    }
    candidates = [];
  };
  for await (const key of store.listKeys(new Date(Date.now() - options.graceMs))) {
    candidates.push(key);
    if (candidates.length >= 500) await check();
    if (options.signal?.aborted === true) break;
  }
  if (candidates.length > 0) await check();
  const temporary = await store.sweepTemporary(options.graceMs);
  if (objects + temporary > 0) deps.logger.info({ objects, temporary }, 'orphaned file objects swept');
  return { objects, temporary };
}
