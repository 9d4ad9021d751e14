/**
 * Objects in an S3-compatible bucket (AWS, R2, MinIO, Supabase Storage's S3
 * endpoint). The key is the bytes' SHA-256, known only once they have passed,
 * so a body is uploaded (multipart, streamed) under `tmp/<random>` while it is
 * hashed and counted, then copied to `sha256/<hex>` unless that object exists,
 * and the temporary object is deleted. A body over the limit, or a failed
 * stream, aborts the upload; a crash can leave a `tmp/` object, which a bucket
 * lifecycle rule or `sweepTemporary` removes.
 */
import { randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ExaiError } from '../../errors.js';
import { MeasuringStream } from './measuring-stream.js';
import { checkDeclaredHash, isObjectKey, objectKey, type ByteRange, type ObjectStore, type PutOptions, type StoredObject } from './object-store.js';

export interface S3StoreOptions {
  bucket: string;
  /** A custom endpoint (MinIO, R2, Supabase); AWS when absent. */
  endpoint?: string;
  region: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Path-style URLs (`endpoint/bucket/key`), which most S3-compatible services need. */
  forcePathStyle?: boolean;
}

function isMissing(error: unknown): boolean {
  return error instanceof S3ServiceException && (error.name === 'NotFound' || error.name === 'NoSuchKey' || error.$metadata.httpStatusCode === 404);
}

export class S3ObjectStore implements ObjectStore {
  readonly kind = 's3' as const;
  private readonly client: S3Client;

  constructor(private readonly options: S3StoreOptions) {
    this.client = new S3Client({
      region: options.region,
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
      ...(options.accessKeyId === undefined || options.secretAccessKey === undefined
        ? {}
        : { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey } }),
      // Checksums only where the API requires them: some S3-compatible servers store streamed
      // bodies with the checksum framing inside otherwise.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 2,
    });
  }

  async put(body: Readable, options: PutOptions): Promise<StoredObject> {
    if (options.skipWriteIfStored === true && options.expectedSha256 !== undefined && (await this.stat(objectKey(options.expectedSha256))) !== undefined) {
      const measure = await MeasuringStream.drain(body, options.maxBytes);
      const sha256 = measure.sha256();
      checkDeclaredHash(options.expectedSha256, sha256);
      return { key: objectKey(sha256), sha256, size: measure.size, existed: true };
    }
    const temporaryKey = `tmp/${Date.now()}-${randomBytes(8).toString('hex')}`;
    const measure = new MeasuringStream(options.maxBytes);
    const passing = new PassThrough();
    const upload = new Upload({ client: this.client, params: { Bucket: this.options.bucket, Key: temporaryKey, Body: passing }, leavePartsOnError: false });
    try {
      await Promise.all([pipeline(body, measure, passing), upload.done()]);
    } catch (error) {
      await upload.abort().catch(() => undefined);
      await this.deleteQuietly(temporaryKey);
      throw this.storeError(error, 'store the file');
    }
    const sha256 = measure.sha256();
    const key = objectKey(sha256);
    try {
      checkDeclaredHash(options.expectedSha256, sha256);
      if ((await this.stat(key)) !== undefined) return { key, sha256, size: measure.size, existed: true };
      try {
        await this.client.send(
          new CopyObjectCommand({ Bucket: this.options.bucket, Key: key, CopySource: `${this.options.bucket}/${temporaryKey}` }),
        );
      } catch (error) {
        // An upload of the same bytes racing this one may have won (some S3-compatible servers
        // refuse concurrent writes to one key): the content address then already holds these bytes.
        if ((await this.stat(key))?.size !== measure.size) throw error;
        return { key, sha256, size: measure.size, existed: true };
      }
      return { key, sha256, size: measure.size, existed: false };
    } catch (error) {
      throw this.storeError(error, 'store the file');
    } finally {
      await this.deleteQuietly(temporaryKey);
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    this.check(key);
    try {
      const answer = await this.client.send(
        new GetObjectCommand({
          Bucket: this.options.bucket,
          Key: key,
          ...(range === undefined ? {} : { Range: `bytes=${range.start}-${range.end ?? ''}` }),
        }),
      );
      return answer.Body as Readable;
    } catch (error) {
      if (isMissing(error)) throw new ExaiError('not_found', `No stored object ${key}.`);
      if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 416) {
        throw new ExaiError('invalid_argument', `The range ${range?.start}-${range?.end ?? ''} is outside the object.`);
      }
      throw this.storeError(error, 'read the file');
    }
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    this.check(key);
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: key }));
      return { size: head.ContentLength ?? 0 };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw this.storeError(error, 'look up the file');
    }
  }

  async delete(key: string): Promise<void> {
    this.check(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: key }));
    } catch (error) {
      if (!isMissing(error)) throw this.storeError(error, 'delete the file');
    }
  }

  /** Removes `tmp/` objects older than `olderThanMs` (uploads a crash interrupted); returns how many. */
  async sweepTemporary(olderThanMs: number, now = Date.now()): Promise<number> {
    const listed = await this.client.send(new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: 'tmp/' }));
    const old = (listed.Contents ?? []).filter((object) => object.Key !== undefined && object.LastModified !== undefined && now - object.LastModified.getTime() > olderThanMs);
    if (old.length === 0) return 0;
    await this.client.send(new DeleteObjectsCommand({ Bucket: this.options.bucket, Delete: { Objects: old.map((object) => ({ Key: object.Key! })) } }));
    return old.length;
  }

  async *listKeys(before: Date): AsyncIterable<string> {
    let token: string | undefined;
    do {
      const page = await this.client
        .send(new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: 'sha256/', ...(token === undefined ? {} : { ContinuationToken: token }) }))
        .catch((error: unknown) => {
          throw this.storeError(error, 'list the files');
        });
      for (const object of page.Contents ?? []) {
        if (object.Key !== undefined && isObjectKey(object.Key) && object.LastModified !== undefined && object.LastModified < before) yield object.Key;
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  close(): void {
    this.client.destroy();
  }

  private check(key: string): void {
    if (!isObjectKey(key)) throw new ExaiError('invalid_argument', `${JSON.stringify(key)} is not an object key.`);
  }

  private async deleteQuietly(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: key })).catch(() => undefined);
  }

  /** Our own errors pass; the store's become one clear error that names the bucket, never credentials. */
  private storeError(error: unknown, doing: string): Error {
    if (error instanceof ExaiError) return error;
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return new ExaiError('storage_unavailable', `Could not ${doing} in bucket ${JSON.stringify(this.options.bucket)}${this.options.endpoint === undefined ? '' : ` at ${this.options.endpoint}`} (${reason}). Check that the object store is reachable and the bucket exists.`, { cause: error });
  }
}
