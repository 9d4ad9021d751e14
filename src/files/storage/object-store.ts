/**
 * Where file bytes live, behind one interface: the local filesystem under
 * EXAI_HOME by default, an S3-compatible service when configured. Objects are
 * content-addressed (`sha256/<hex>`): the same bytes are one object whoever
 * uploads them, and a key never changes meaning. Users and names live in the
 * metadata rows, never in the store.
 */
import type { Readable } from 'node:stream';
import { ExaiError } from '../../errors.js';

export interface StoredObject {
  key: string;
  sha256: string;
  size: number;
  /** The bytes were already stored under this key; nothing new was written. */
  existed: boolean;
}

export interface PutOptions {
  maxBytes: number;
  /** The SHA-256 the sender says the bytes have: bytes that hash otherwise are refused, and nothing is stored. */
  expectedSha256?: string;
  /**
   * With `expectedSha256`: when that object exists, the body is only hashed to
   * check it, and nothing is written (a re-upload costs one hash pass). Set only
   * when the sender already has these bytes stored: the time saved would tell
   * anyone else that someone does.
   */
  skipWriteIfStored?: boolean;
}

export interface ByteRange {
  start: number;
  /** Inclusive, as in HTTP Range; the end of the object when absent. */
  end?: number;
}

export interface ObjectStore {
  readonly kind: 'file' | 's3';
  /**
   * Streams `body` into the store, hashing it on the way. A body longer than
   * `maxBytes`, or one whose stream fails, leaves nothing behind.
   */
  put(body: Readable, options: PutOptions): Promise<StoredObject>;
  /** The object's bytes (or a range of them) as a stream; not_found when absent. */
  get(key: string, range?: ByteRange): Promise<Readable>;
  /** The object's size, or undefined when absent. */
  stat(key: string): Promise<{ size: number } | undefined>;
  /** Removes the object; absent objects are not an error. */
  delete(key: string): Promise<void>;
  /** Keys of the objects last written before `before`, for the sweep of objects no row refers to. */
  listKeys(before: Date): AsyncIterable<string>;
  /** Temporary uploads a crash left, older than `olderThanMs`, removed; returns how many. */
  sweepTemporary(olderThanMs: number, now?: number): Promise<number>;
  /** Where the object lies on this machine, for stores that are a local folder. */
  localPath?(key: string): string;
  close?(): void;
}

const keyPattern = /^sha256\/[0-9a-f]{64}$/;

/** Refuses a body that did not hash to the SHA-256 its sender declared. */
export function checkDeclaredHash(expected: string | undefined, actual: string): void {
  if (expected !== undefined && expected !== actual) {
    throw new ExaiError('invalid_argument', `The bytes received hash to ${actual}, not the sha256 ${expected} that was declared; nothing was stored. Send the file again, or leave the hash out.`);
  }
}

export function objectKey(sha256: string): string {
  return `sha256/${sha256}`;
}

/** Keys come from our own rows, but are checked anyway: nothing else may reach a path or a bucket. */
export function isObjectKey(key: string): boolean {
  return keyPattern.test(key);
}
