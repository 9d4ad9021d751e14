/**
 * UnifiedFileHandler: the one way every tool, REST route and job stores and
 * reads users' files. Bytes are streamed into the primary object store under
 * their SHA-256 (the same bytes are one object, whoever sends them); then one
 * transaction records the object and the user's row (the same bytes twice from
 * one user are one row). Rows are read as the user, under row-level security.
 *
 * Failure leaves no half-written state a user can see: a body over the limit or
 * a failed stream stores nothing; an object whose row was never written (a crash,
 * a database error) is an orphan that `sweepOrphanObjects` removes.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { sqlState } from '../db/errors.js';
import { asService, asUser, isUuid, switchToServiceSql } from '../db/session.js';
import type { Database, Queryable } from '../db/types.js';
import { ExaiError } from '../errors.js';
import type { Logger } from '../logger.js';
import { checkMimeType, loadBucket, tooLarge, type Bucket, type BucketName } from './buckets.js';
import { fileColumns, toFileRecord, type FileRecord, type FileRow } from './file-record.js';
import { resolveAllowedPath, type FileAccess } from './prompt-files.js';
import type { ByteRange, ObjectStore, StoredObject } from './storage/object-store.js';
import { mimeTypeFor } from './processing/mime-types.js';
import { lockObjectKey } from './object-locks.js';
import { gunzipLimited } from './processing/gzip-at-rest.js';
import { sliceStream } from './slice-stream.js';

/** Reads objects through the caches in front of the primary store. */
export interface ObjectReader {
  open(key: string, size: number, range?: ByteRange): Promise<{ stream: Readable; tier: string }>;
  forget(key: string): Promise<void> | void;
}

export interface UploadInput {
  userId: string;
  /** The name to show (a base name, or the path the file came from); never used as a path. */
  name: string;
  body: Readable | Buffer;
  /** The type the client declared; otherwise from the name's extension. */
  mimeType?: string;
  bucket?: BucketName | string;
  /** Link the file to this conversation of the user's. */
  conversationId?: string;
  metadata?: Record<string, unknown>;
  /**
   * The SHA-256 (hex) the client computed: when these bytes are already stored, they are only
   * hashed to check, never written again. A body that hashes otherwise is refused.
   */
  sha256?: string;
  /** The body is gzip-compressed (HTTP Content-Encoding): stored inflated, and refused once it inflates past the bucket's limit. */
  contentEncoding?: 'gzip';
}

export interface UploadResult {
  file: FileRecord;
  /** The user already had these bytes: the existing row is returned and nothing new was written. */
  deduplicated: boolean;
  /** The object already existed in the store (this user's or anyone's). */
  objectExisted: boolean;
}

export interface OpenedFile {
  file: FileRecord;
  stream: Readable;
  /** Which tier served the bytes (memory, disk, primary). */
  tier: string;
}

export interface FileListPage {
  files: FileRecord[];
  /** Pass as `before` for the next page; absent on the last. */
  nextCursor?: string;
}

export interface FileHandlerOptions {
  db: Database;
  store: ObjectStore;
  reader: ObjectReader;
  logger: Logger;
  /** Called after an upload stored an object that had no row yet (the processing job takes it from there). */
  onNewObject?: (storageKey: string) => void;
}

/** Any C0 control character or DEL, as a predicate rather than a regex of control characters. */
const hasControlCharacter = (text: string): boolean => [...text].some((char) => char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f);

/** A display name: 1-1024 characters without control characters (a NUL would cut it short elsewhere). */
export function checkFileName(name: string): string {
  if (typeof name !== 'string' || name.trim() === '') throw new ExaiError('invalid_argument', 'A file needs a name, such as "notes.md".');
  if (name.length > 1024) throw new ExaiError('invalid_argument', `A file name may have at most 1024 characters; this one has ${name.length}.`);
  if (hasControlCharacter(name)) throw new ExaiError('invalid_argument', 'A file name may not contain control characters or NUL bytes.');
  return name;
}

/** As the column's check has it (type/subtype, no parameters). */
const mimeTypePattern = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/;

export function checkFileId(id: string): string {
  if (!isUuid(id)) throw new ExaiError('invalid_argument', `${JSON.stringify(id)} is not a file id; file ids look like 0b7c5e1e-5d0a-4c3e-9f57-2d1c1f0b9a11 (see file_list).`);
  return id.toLowerCase();
}

function notFound(id: string): ExaiError {
  return new ExaiError('not_found', `No file ${id}: it does not exist, was deleted, or belongs to someone else. file_list shows your files.`);
}

export class FileHandler {
  constructor(private readonly options: FileHandlerOptions) {}

  get store(): ObjectStore {
    return this.options.store;
  }

  /** Stores bytes (a stream or a buffer) for a user; see the module comment. */
  async upload(input: UploadInput): Promise<UploadResult> {
    const name = checkFileName(input.name);
    if (input.conversationId !== undefined && !isUuid(input.conversationId)) {
      throw new ExaiError('invalid_argument', `${JSON.stringify(input.conversationId)} is not a conversation id.`);
    }
    if (input.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(input.sha256)) {
      throw new ExaiError('invalid_argument', 'sha256 must be 64 lowercase hex digits (the SHA-256 of the file), or left out.');
    }
    const mimeType = mimeTypeFor(name, input.mimeType);
    if (!mimeTypePattern.test(mimeType) || mimeType.length > 255) {
      throw new ExaiError('invalid_argument', `${JSON.stringify(mimeType.slice(0, 100))} is not a MIME type; send one such as text/markdown or application/pdf, or leave it out.`);
    }
    const bucket = await asUser(this.options.db, input.userId, (tx) => loadBucket(tx, input.bucket ?? 'user-uploads'));
    checkMimeType(bucket, mimeType);
    let body = Buffer.isBuffer(input.body) ? Readable.from([input.body]) : input.body;
    if (input.contentEncoding === 'gzip') {
      // A gzip bomb stops at the bucket's limit, having inflated no more than that.
      const compressed = body;
      body = compressed.pipe(gunzipLimited(bucket.maxBytes));
      compressed.on('error', (error) => body.destroy(error));
    } else if (Buffer.isBuffer(input.body) && input.body.length > bucket.maxBytes) {
      throw tooLarge(bucket, input.body.length);
    }
    const stored = await this.putLimited(body, bucket, input.sha256, input.sha256 !== undefined && (await this.hasLiveFile(input.userId, input.sha256)));
    return this.record(input, { name, mimeType, bucket, stored });
  }

  /**
   * Stores a file of the server's own disk, for callers that share its filesystem:
   * only under the allowed roots, after symlinks are resolved, never exai's own files.
   */
  async uploadPath(input: Omit<UploadInput, 'body' | 'name'> & { path: string; name?: string; access: FileAccess }): Promise<UploadResult> {
    if (input.path.includes('\0')) throw new ExaiError('invalid_argument', 'A path may not contain NUL bytes.');
    // The caller's access, not the server's: callers over the network read only what EXAI_ALLOWED_ROOTS names.
    const real = await resolveAllowedPath(input.path, input.access);
    const info = await stat(real);
    if (!info.isFile()) throw new ExaiError('invalid_argument', `${input.path} is not a regular file.`);
    const bucket = await asUser(this.options.db, input.userId, (tx) => loadBucket(tx, input.bucket ?? 'user-uploads'));
    if (info.size > bucket.maxBytes) throw tooLarge(bucket, info.size);
    const { access: _access, path: _path, ...rest } = input;
    return this.upload({ ...rest, name: input.name ?? input.path, body: createReadStream(real) });
  }

  /** A live file of the user's; not_found for deleted files and other users' files alike. */
  async info(userId: string, id: string): Promise<FileRecord> {
    const fileId = checkFileId(id);
    const found = await asUser(this.options.db, userId, (tx) =>
      tx.query<FileRow>(`SELECT ${fileColumns} FROM exai.file_metadata m WHERE m.id = $1 AND m.deleted_at IS NULL`, [fileId]),
    );
    const row = found.rows[0];
    if (row === undefined) throw notFound(fileId);
    return toFileRecord(row);
  }

  /** The user's live files, newest first, a page at a time. */
  async list(userId: string, options: { limit?: number; before?: string; bucket?: string } = {}): Promise<FileListPage> {
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new ExaiError('invalid_argument', 'limit must be a whole number from 1 to 500.');
    const cursor = options.before === undefined ? undefined : decodeCursor(options.before);
    const rows = await asUser(this.options.db, userId, (tx) =>
      tx.query<FileRow>(
        `SELECT ${fileColumns} FROM exai.file_metadata m
          WHERE m.deleted_at IS NULL
            AND ($1::text IS NULL OR m.bucket = $1)
            AND ($2::timestamptz IS NULL OR (m.created_at, m.id) < ($2::timestamptz, $3::uuid))
          ORDER BY m.created_at DESC, m.id DESC
          LIMIT $4`,
        [options.bucket ?? null, cursor?.createdAt ?? null, cursor?.id ?? null, limit + 1],
      ),
    );
    const files = rows.rows.slice(0, limit).map(toFileRecord);
    const last = files.at(-1);
    return rows.rows.length > limit && last !== undefined ? { files, nextCursor: encodeCursor(last) } : { files };
  }

  /** The file's bytes, or a range of them, through the cache tiers. */
  async open(userId: string, id: string, range?: ByteRange): Promise<OpenedFile> {
    const fileId = checkFileId(id);
    const found = await asUser(this.options.db, userId, (tx) =>
      tx.query<FileRow & { stored_key: string; stored_encoding: string; stored_size: string }>(
        `SELECT ${fileColumns}, o.stored_key, o.stored_encoding, o.stored_size
           FROM exai.file_metadata m JOIN exai.file_objects o ON o.storage_key = m.storage_key
          WHERE m.id = $1 AND m.deleted_at IS NULL`,
        [fileId],
      ),
    );
    const row = found.rows[0];
    if (row === undefined) throw notFound(fileId);
    const file = toFileRecord(row);
    if (range !== undefined) checkRange(range, file.size);
    if (row.stored_encoding === 'gzip') {
      // Kept compressed: inflate (never past the recorded size) and cut the range out of the stream.
      const opened = await this.options.reader.open(row.stored_key, Number(row.stored_size));
      const inflated = opened.stream.pipe(gunzipLimited(file.size));
      opened.stream.on('error', (error) => inflated.destroy(error));
      if (range === undefined) return { file, stream: inflated, tier: opened.tier };
      const slice = inflated.pipe(sliceStream(range.start, range.end ?? file.size - 1));
      // A failure anywhere upstream must end the response, not leave it hanging.
      inflated.on('error', (error) => slice.destroy(error));
      return { file, stream: slice, tier: opened.tier };
    }
    const opened = await this.options.reader.open(row.stored_key, file.size, range);
    return { file, stream: opened.stream, tier: opened.tier };
  }

  /** The WebP preview the processing job made of an image; not_found until it exists. */
  async openPreview(userId: string, id: string): Promise<OpenedFile> {
    const fileId = checkFileId(id);
    const found = await asUser(this.options.db, userId, (tx) =>
      tx.query<FileRow & { preview_key: string | null; preview_size: string | null }>(
        `SELECT ${fileColumns}, o.preview_key, o.preview_size
           FROM exai.file_metadata m JOIN exai.file_objects o ON o.storage_key = m.storage_key
          WHERE m.id = $1 AND m.deleted_at IS NULL`,
        [fileId],
      ),
    );
    const row = found.rows[0];
    if (row === undefined) throw notFound(fileId);
    if (row.preview_key === null || row.preview_size === null) {
      throw new ExaiError('not_found', `File ${fileId} has no preview${row.mime_type.startsWith('image/') ? ' yet (previews are made shortly after upload)' : ': only images get one'}.`);
    }
    const base = toFileRecord(row);
    const opened = await this.options.reader.open(row.preview_key, Number(row.preview_size));
    return { file: { ...base, mimeType: 'image/webp', size: Number(row.preview_size), name: `${base.name}.preview.webp` }, stream: opened.stream, tier: opened.tier };
  }

  /** The whole file in memory, for prompts and provider uploads; refused past `maxBytes`. */
  async readBytes(userId: string, id: string, maxBytes: number | ((file: FileRecord) => number)): Promise<{ file: FileRecord; bytes: Buffer }> {
    const file = await this.info(userId, id);
    const limit = typeof maxBytes === 'number' ? maxBytes : maxBytes(file);
    // Checked before a byte is read: a file over the limit costs one row lookup.
    if (file.size > limit) {
      throw new ExaiError('too_large', `File ${file.name} is ${file.size} bytes, more than the ${limit} that can be read here.`, { details: { size: file.size, limit } });
    }
    const opened = await this.open(userId, file.id);
    const chunks: Buffer[] = [];
    for await (const chunk of opened.stream) chunks.push(chunk as Buffer);
    return { file: opened.file, bytes: Buffer.concat(chunks) };
  }

  /** Soft delete: gone for the user at once; the purge job removes the row and, when unused, the object. */
  async delete(userId: string, id: string, record?: (serviceTx: Queryable) => Promise<void>): Promise<FileRecord> {
    const fileId = checkFileId(id);
    return asUser(this.options.db, userId, async (tx) => {
      const deleted = await tx.query<FileRow>(
        `UPDATE exai.file_metadata m SET deleted_at = now(), updated_at = now()
          WHERE m.id = $1 AND m.deleted_at IS NULL RETURNING ${fileColumns}`,
        [fileId],
      );
      const row = deleted.rows[0];
      if (row === undefined) throw notFound(fileId);
      // `record` (the audit log) commits with the deletion, as the service role.
      if (record !== undefined) {
        await tx.query(switchToServiceSql);
        await record(tx);
      }
      return toFileRecord(row);
    });
  }

  /** Records that a conversation of the user's used the file; unknown or foreign ids are not_found. */
  async link(userId: string, conversationId: string, fileId: string): Promise<void> {
    await asUser(this.options.db, userId, (tx) => linkConversation(tx, conversationId, checkFileId(fileId)));
  }

  /** The ids of the files linked to a conversation of the user's. */
  async conversationFiles(userId: string, conversationId: string): Promise<FileRecord[]> {
    if (!isUuid(conversationId)) throw new ExaiError('invalid_argument', `${JSON.stringify(conversationId)} is not a conversation id.`);
    const rows = await asUser(this.options.db, userId, (tx) =>
      tx.query<FileRow>(
        `SELECT ${fileColumns} FROM exai.conversation_files c JOIN exai.file_metadata m ON m.id = c.file_id
          WHERE c.conversation_id = $1 AND m.deleted_at IS NULL ORDER BY c.linked_at, m.id`,
        [conversationId],
      ),
    );
    return rows.rows.map(toFileRecord);
  }

  /**
   * Whether the store holds the object. Asked up to three times, 100 ms apart: some S3-compatible
   * services answer 404 for a moment while a racing upload of the same bytes rewrites the object.
   */
  private async objectPresent(key: string): Promise<boolean> {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 100));
      if ((await this.options.store.stat(key)) !== undefined) return true;
    }
    return false;
  }

  /** Whether the user already has a live file with these bytes. */
  private async hasLiveFile(userId: string, sha256: string): Promise<boolean> {
    const found = await asUser(this.options.db, userId, (tx) => tx.query('SELECT 1 FROM exai.file_metadata WHERE sha256 = $1 AND deleted_at IS NULL', [sha256]));
    return found.rows.length > 0;
  }

  private async putLimited(body: Readable, bucket: Bucket, expectedSha256: string | undefined, skipWriteIfStored: boolean): Promise<StoredObject> {
    try {
      return await this.options.store.put(body, { maxBytes: bucket.maxBytes, skipWriteIfStored, ...(expectedSha256 === undefined ? {} : { expectedSha256 }) });
    } catch (error) {
      if (error instanceof ExaiError && error.code === 'too_large') throw tooLarge(bucket);
      throw error;
    }
  }

  /** The object's row and the user's row, in one transaction; see the module comment for the races it closes. */
  private async record(
    input: UploadInput,
    upload: { name: string; mimeType: string; bucket: Bucket; stored: StoredObject },
  ): Promise<UploadResult> {
    const { stored } = upload;
    const localPath = this.options.store.localPath?.(stored.key) ?? null;
    const result = await asService(this.options.db, async (tx) => {
      await lockObjectKey(tx, stored.key);
      const object = await tx.query<{ inserted: boolean }>(
        `INSERT INTO exai.file_objects (storage_key, size, stored_key, stored_size) VALUES ($1, $2, $1, $2)
         ON CONFLICT (storage_key) DO UPDATE SET referenced_at = now()
         RETURNING (xmax = 0) AS inserted`,
        [stored.key, stored.size],
      );
      // A new object row: a purge or sweep may have removed the bytes between our put and this lock
      // (also bytes we wrote just now). Check, rather than record a row without bytes.
      if (object.rows[0]!.inserted && !(await this.objectPresent(stored.key))) {
        throw new ExaiError('conflict', 'The file was being cleaned up while it was uploaded; nothing was stored. Upload it again.');
      }
      const existing = await tx.query<FileRow>(
        `SELECT ${fileColumns} FROM exai.file_metadata m WHERE m.owner_id = $1 AND m.sha256 = $2 AND m.deleted_at IS NULL FOR UPDATE`,
        [input.userId, stored.sha256],
      );
      let row = existing.rows[0];
      const deduplicated = row !== undefined;
      if (row === undefined) {
        const inserted = await tx.query<FileRow>(
          `INSERT INTO exai.file_metadata AS m (owner_id, bucket, file_path, storage_key, local_path, size, mime_type, sha256, metadata)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           RETURNING ${fileColumns}`,
          [input.userId, upload.bucket.name, upload.name, stored.key, localPath, stored.size, upload.mimeType, stored.sha256, JSON.stringify(input.metadata ?? {})],
        );
        row = inserted.rows[0]!;
      }
      if (input.conversationId !== undefined) {
        await tx.query(
          `INSERT INTO exai.conversation_files (conversation_id, file_id, owner_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
          [input.conversationId, row.id, input.userId],
        ).catch((error: unknown) => {
          throw conversationProblem(error, input.conversationId!);
        });
      }
      return { file: toFileRecord(row), deduplicated, newObject: object.rows[0]!.inserted };
    });
    if (result.newObject) this.options.onNewObject?.(stored.key);
    return { file: result.file, deduplicated: result.deduplicated, objectExisted: stored.existed };
  }
}

async function linkConversation(tx: Queryable, conversationId: string, fileId: string): Promise<void> {
  if (!isUuid(conversationId)) throw new ExaiError('invalid_argument', `${JSON.stringify(conversationId)} is not a conversation id.`);
  const file = await tx.query('SELECT 1 FROM exai.file_metadata WHERE id = $1 AND deleted_at IS NULL', [fileId]);
  if (file.rows.length === 0) throw notFound(fileId);
  await tx
    .query('INSERT INTO exai.conversation_files (conversation_id, file_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [conversationId, fileId])
    .catch((error: unknown) => {
      throw conversationProblem(error, conversationId);
    });
}

/** A foreign key naming another user's (or no) thread reads as a missing thread. */
function conversationProblem(error: unknown, conversationId: string): unknown {
  return sqlState(error) === '23503' ? new ExaiError('not_found', `No conversation ${conversationId} of yours to link the file to.`) : error;
}

function checkRange(range: ByteRange, size: number): void {
  const end = range.end ?? size - 1;
  if (!Number.isInteger(range.start) || range.start < 0 || !Number.isInteger(end) || end < range.start || end >= size) {
    throw new ExaiError('invalid_argument', `The range ${range.start}-${range.end ?? ''} is outside the file's ${size} bytes.`);
  }
}

function encodeCursor(file: FileRecord): string {
  return Buffer.from(JSON.stringify([file.createdAt, file.id])).toString('base64url');
}

function decodeCursor(text: string): { createdAt: string; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as [unknown, unknown];
    if (typeof createdAt === 'string' && !Number.isNaN(Date.parse(createdAt)) && typeof id === 'string' && isUuid(id)) return { createdAt, id };
  } catch {
    // falls through to the error below
  }
  throw new ExaiError('invalid_argument', 'The cursor is not one this server gave out; pass the next_cursor of an earlier page.');
}

