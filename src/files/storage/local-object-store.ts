/**
 * The default object store: files under `<EXAI_HOME>/objects`. A body is
 * written to a temporary file in the same folder tree while its SHA-256 is
 * computed, then renamed into place, so a reader never sees half an object and
 * a crash leaves at most a temporary file (swept by `sweepTemporary`). Two
 * uploads of the same bytes rename onto the same path: one object.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ExaiError } from '../../errors.js';
import { MeasuringStream } from './measuring-stream.js';
import { checkDeclaredHash, isObjectKey, objectKey, type ByteRange, type ObjectStore, type PutOptions, type StoredObject } from './object-store.js';

export class LocalObjectStore implements ObjectStore {
  readonly kind = 'file' as const;
  private readonly temporary: string;

  constructor(private readonly root: string) {
    this.temporary = path.join(root, 'tmp');
  }

  async put(body: Readable, options: PutOptions): Promise<StoredObject> {
    if (options.skipWriteIfStored === true && options.expectedSha256 !== undefined && (await this.stat(objectKey(options.expectedSha256))) !== undefined) {
      const measure = await MeasuringStream.drain(body, options.maxBytes);
      const sha256 = measure.sha256();
      checkDeclaredHash(options.expectedSha256, sha256);
      return { key: objectKey(sha256), sha256, size: measure.size, existed: true };
    }
    await mkdir(this.temporary, { recursive: true, mode: 0o700 });
    const temporaryPath = path.join(this.temporary, `${Date.now()}-${randomBytes(8).toString('hex')}`);
    const measure = new MeasuringStream(options.maxBytes);
    try {
      await pipeline(body, measure, createWriteStream(temporaryPath, { mode: 0o600 }));
      const sha256 = measure.sha256();
      checkDeclaredHash(options.expectedSha256, sha256);
      const key = objectKey(sha256);
      const finalPath = this.pathOf(key);
      const existed = (await stat(finalPath).catch(() => undefined)) !== undefined;
      if (existed) {
        await rm(temporaryPath, { force: true });
      } else {
        await mkdir(path.dirname(finalPath), { recursive: true, mode: 0o700 });
        // Atomic: a concurrent upload of the same bytes renames identical content onto the same path.
        await rename(temporaryPath, finalPath);
      }
      return { key, sha256, size: measure.size, existed };
    } catch (error) {
      await rm(temporaryPath, { force: true });
      throw error;
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const size = (await this.stat(key))?.size;
    if (size === undefined) throw new ExaiError('not_found', `No stored object ${key}.`);
    if (range !== undefined) {
      const end = range.end ?? size - 1;
      if (!Number.isInteger(range.start) || range.start < 0 || !Number.isInteger(end) || end < range.start || end >= size) {
        throw new ExaiError('invalid_argument', `The range ${range.start}-${range.end ?? ''} is outside the object's ${size} bytes.`);
      }
      return createReadStream(this.pathOf(key), { start: range.start, end });
    }
    return createReadStream(this.pathOf(key));
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    const found = await stat(this.pathOf(key)).catch(() => undefined);
    return found?.isFile() === true ? { size: found.size } : undefined;
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  /** Removes temporary files older than `olderThanMs` (uploads a crash interrupted); returns how many. */
  async sweepTemporary(olderThanMs: number, now = Date.now()): Promise<number> {
    const names = await readdir(this.temporary).catch(() => [] as string[]);
    let removed = 0;
    for (const name of names) {
      const full = path.join(this.temporary, name);
      const info = await stat(full).catch(() => undefined);
      if (info !== undefined && now - info.mtimeMs > olderThanMs) {
        await rm(full, { force: true });
        removed += 1;
      }
    }
    return removed;
  }

  async *listKeys(before: Date): AsyncIterable<string> {
    const top = path.join(this.root, 'sha256');
    for (const first of await readdir(top).catch(() => [] as string[])) {
      for (const second of await readdir(path.join(top, first)).catch(() => [] as string[])) {
        for (const name of await readdir(path.join(top, first, second)).catch(() => [] as string[])) {
          const key = objectKey(name);
          if (!isObjectKey(key)) continue;
          const info = await stat(path.join(top, first, second, name)).catch(() => undefined);
          if (info !== undefined && info.mtimeMs < before.getTime()) yield key;
        }
      }
    }
  }

  localPath(key: string): string {
    return this.pathOf(key);
  }

  /** Two levels of fan-out keep folders small; the key was checked, so the path stays under the root. */
  private pathOf(key: string): string {
    if (!isObjectKey(key)) throw new ExaiError('invalid_argument', `${JSON.stringify(key)} is not an object key.`);
    const hex = key.slice('sha256/'.length);
    return path.join(this.root, 'sha256', hex.slice(0, 2), hex.slice(2, 4), hex);
  }
}
