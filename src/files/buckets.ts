/**
 * Buckets as Supabase Storage has them: a size limit and the MIME types a
 * bucket takes (`text/*` style wildcards; none listed = any). The rows live in
 * `exai.file_buckets`, so an operator changes them with SQL and every instance
 * sees the change at the next upload.
 */
import { ExaiError } from '../errors.js';
import type { Queryable } from '../db/types.js';

export const bucketNames = ['conversation-files', 'user-uploads'] as const;
export type BucketName = (typeof bucketNames)[number];

export interface Bucket {
  name: string;
  maxBytes: number;
  /** undefined: any type */
  allowedMimeTypes: string[] | undefined;
}

export async function loadBucket(tx: Queryable, name: string): Promise<Bucket> {
  const found = await tx.query<{ name: string; max_bytes: string; allowed_mime_types: string[] | null }>(
    'SELECT name, max_bytes, allowed_mime_types FROM exai.file_buckets WHERE name = $1',
    [name],
  );
  const row = found.rows[0];
  if (row === undefined) {
    const names = await tx.query<{ name: string }>('SELECT name FROM exai.file_buckets ORDER BY name');
    throw new ExaiError('invalid_argument', `There is no bucket ${JSON.stringify(name)}; the buckets are ${names.rows.map((bucket) => bucket.name).join(', ')}.`);
  }
  return { name: row.name, maxBytes: Number(row.max_bytes), allowedMimeTypes: row.allowed_mime_types ?? undefined };
}

/** Refuses a type the bucket does not take, saying which it takes. */
export function checkMimeType(bucket: Bucket, mimeType: string): void {
  const allowed = bucket.allowedMimeTypes;
  if (allowed === undefined) return;
  const accepted = allowed.some((pattern) => (pattern.endsWith('/*') ? mimeType.startsWith(pattern.slice(0, -1)) : pattern === mimeType));
  if (!accepted) {
    throw new ExaiError(
      'unsupported_media_type',
      `Bucket ${bucket.name} does not take ${mimeType} files; it takes ${allowed.join(', ')}. Upload to bucket user-uploads, which takes any type.`,
    );
  }
}

/** The size limit as an error, before or while the bytes arrive. */
export function tooLarge(bucket: Bucket, size?: number): ExaiError {
  return new ExaiError(
    'too_large',
    `${size === undefined ? 'The file is' : `The file is ${size} bytes,`} larger than the ${bucket.maxBytes}-byte limit of bucket ${bucket.name}; nothing was stored.`,
  );
}
