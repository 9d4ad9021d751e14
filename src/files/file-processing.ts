/**
 * The processing job's work on one stored object, done once per object (the
 * same bytes are processed once, whoever uploaded them):
 * - text extraction (plain text, Markdown, code, PDF) into `exai.file_texts`,
 *   for search and for answering questions without reading the bytes again;
 * - gzip at rest for large text: the object row then points at the gzip
 *   object, reads inflate it (never past the recorded size), and the orphan
 *   sweep removes the plain copy;
 * - a WebP preview of an image, at most 1568 px a side (what vision models take).
 * Content that cannot be processed (a binary "text", a broken PDF) is logged
 * and the object marked done; a store or database failure leaves it pending,
 * so the next run tries again.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { asService } from '../db/session.js';
import type { Database, Queryable } from '../db/types.js';
import { ExaiError } from '../errors.js';
import type { Logger } from '../logger.js';
import { gunzipLimited, gzipStream, shouldGzip } from './processing/gzip-at-rest.js';
import { resizeImage } from './processing/images.js';
import { isTextMimeType } from './processing/mime-types.js';
import { extractText } from './processing/text-extraction.js';
import type { ObjectStore } from './storage/object-store.js';
import { lockObjectKey } from './object-locks.js';

export interface ProcessingDeps {
  db: Database;
  store: ObjectStore;
  logger: Logger;
}

/** Larger objects are stored and served, but not read whole into memory to be processed. */
const maxProcessedBytes = 64 * 1024 * 1024;
const maxExtractedChars = 2_000_000;
const previewSide = 1568;
const previewTypes = new Set(['image/png', 'image/jpeg', 'image/webp', 'image/gif']);
/** Tries per object before it is left alone (its error stays in process_error). */
const maxAttempts = 5;

interface ObjectRow {
  storage_key: string;
  size: string;
  stored_key: string;
  stored_encoding: 'identity' | 'gzip';
  preview_key: string | null;
  mime_type: string | null;
}

export interface ProcessingResult {
  text: boolean;
  gzipped: boolean;
  preview: boolean;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The object's original bytes, inflated when kept gzipped. */
async function originalBytes(store: ObjectStore, row: ObjectRow): Promise<Buffer> {
  const stored = await store.get(row.stored_key);
  if (row.stored_encoding === 'identity') return readAll(stored);
  const inflated = stored.pipe(gunzipLimited(Number(row.size)));
  stored.on('error', (error) => inflated.destroy(error));
  return readAll(inflated);
}

/** Whether an error is about the content (never going to work) rather than the store or the database. */
function isContentProblem(error: unknown): boolean {
  return error instanceof ExaiError && ['invalid_argument', 'unsupported_media_type', 'too_large'].includes(error.code);
}

export async function processObject(deps: ProcessingDeps, storageKey: string): Promise<ProcessingResult> {
  const { db, store, logger } = deps;
  const result: ProcessingResult = { text: false, gzipped: false, preview: false };
  const found = await asService(db, (tx) =>
    tx.query<ObjectRow>(
      `SELECT o.storage_key, o.size, o.stored_key, o.stored_encoding, o.preview_key,
              (SELECT m.mime_type FROM exai.file_metadata m WHERE m.storage_key = o.storage_key ORDER BY m.created_at LIMIT 1) AS mime_type
         FROM exai.file_objects o WHERE o.storage_key = $1`,
      [storageKey],
    ),
  );
  const row = found.rows[0];
  if (row === undefined) return result;
  const size = Number(row.size);
  const mime = row.mime_type ?? 'application/octet-stream';
  const wantsText = isTextMimeType(mime) || mime === 'application/pdf';
  const wantsPreview = previewTypes.has(mime) && row.preview_key === null;
  if (size <= maxProcessedBytes && (wantsText || wantsPreview)) {
    const bytes = await originalBytes(store, row);
    if (wantsText) {
      try {
        const extracted = await extractText({ bytes, mimeType: mime, name: 'file', maxChars: maxExtractedChars });
        await asService(db, (tx) =>
          tx.query(
            `INSERT INTO exai.file_texts (storage_key, format, content, truncated, pages) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (storage_key) DO UPDATE SET format = EXCLUDED.format, content = EXCLUDED.content,
               truncated = EXCLUDED.truncated, pages = EXCLUDED.pages,
               -- The same text again keeps its time, so search keeps its chunks and their vectors.
               extracted_at = CASE WHEN exai.file_texts.content IS DISTINCT FROM EXCLUDED.content THEN now() ELSE exai.file_texts.extracted_at END`,
            [storageKey, extracted.format, extracted.text, extracted.truncated, extracted.pages ?? null],
          ),
        );
        result.text = true;
      } catch (error) {
        if (!isContentProblem(error)) throw error;
        logger.info({ storageKey, mime, reason: (error as Error).message }, 'no text extracted from a file');
      }
    }
    if (wantsPreview) {
      try {
        const preview = await resizeImage(bytes, { maxWidth: previewSide, maxHeight: previewSide, format: 'webp' });
        const stored = await store.put(Readable.from([preview.bytes]), { maxBytes: preview.bytes.length });
        result.preview = await pointAt(deps, storageKey, stored.key, (tx) =>
          tx.query('UPDATE exai.file_objects SET preview_key = $2, preview_size = $3 WHERE storage_key = $1', [storageKey, stored.key, stored.size]),
        );
      } catch (error) {
        if (!isContentProblem(error)) throw error;
        logger.info({ storageKey, mime, reason: (error as Error).message }, 'no preview made of an image');
      }
    }
  }
  if (row.stored_encoding === 'identity' && shouldGzip(mime, size)) {
    result.gzipped = await gzipAtRest(deps, row);
  }
  await asService(db, (tx) => tx.query('UPDATE exai.file_objects SET processed_at = now() WHERE storage_key = $1', [storageKey]));
  return result;
}

/** Stores a gzip of the object and points the row at it, when that saves at least a tenth. */
async function gzipAtRest(deps: ProcessingDeps, row: ObjectRow): Promise<boolean> {
  const size = Number(row.size);
  const source = await deps.store.get(row.stored_key);
  const compressed = gzipStream();
  const written = deps.store.put(compressed, { maxBytes: size + 1024 * 1024 });
  await Promise.all([pipeline(source, compressed), written]);
  const gz = await written;
  if (gz.size > size * 0.9) {
    // Not worth it; the gzip object has no row and the orphan sweep removes it (unless it is someone's file).
    return false;
  }
  // The plain object is left to the orphan sweep: a read that looked up the row a moment ago may still open it.
  return pointAt(deps, row.storage_key, gz.key, (tx) =>
    tx.query(
      `UPDATE exai.file_objects SET stored_key = $2, stored_encoding = 'gzip', stored_size = $3
        WHERE storage_key = $1 AND stored_encoding = 'identity'`,
      [row.storage_key, gz.key, gz.size],
    ),
  );
}

/**
 * Makes an object row keep new bytes (`key`): under the row's key lock and the new key's
 * (the order the purge takes them in), after checking the bytes are still in the store, since
 * the sweep may have taken identical old bytes that no row kept. Whether the row was updated.
 */
async function pointAt(deps: ProcessingDeps, storageKey: string, key: string, update: (tx: Queryable) => Promise<{ affectedRows: number }>): Promise<boolean> {
  return asService(deps.db, async (tx) => {
    await lockObjectKey(tx, storageKey);
    await lockObjectKey(tx, key);
    if ((await deps.store.stat(key)) === undefined) throw new ExaiError('storage_unavailable', `The processed object ${key} was removed before it was recorded; it will be made again.`);
    return (await update(tx)).affectedRows === 1;
  });
}

/** Objects not processed yet (and not given up on), oldest first, up to `limit`; returns how many were tried. */
export async function processPendingObjects(deps: ProcessingDeps, options: { limit?: number; signal?: AbortSignal } = {}): Promise<number> {
  const pending = await asService(deps.db, (tx) =>
    tx.query<{ storage_key: string }>(
      `SELECT storage_key FROM exai.file_objects WHERE processed_at IS NULL AND process_attempts < ${maxAttempts}
        ORDER BY created_at LIMIT $1`,
      [options.limit ?? 100],
    ),
  );
  let done = 0;
  for (const { storage_key: key } of pending.rows) {
    if (options.signal?.aborted === true) break;
    try {
      await processObject(deps, key);
    } catch (error) {
      // One object that keeps failing (its bytes gone, a store error) must not hold up the others.
      const reason = error instanceof Error ? error.message : String(error);
      deps.logger.warn({ storageKey: key, err: reason }, 'processing a stored file failed; it will be tried again');
      await asService(deps.db, (tx) =>
        tx.query('UPDATE exai.file_objects SET process_attempts = process_attempts + 1, process_error = left($2, 1000) WHERE storage_key = $1', [key, reason]),
      );
    }
    done += 1;
  }
  return done;
}
