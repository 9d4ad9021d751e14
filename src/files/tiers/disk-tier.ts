/**
 * The middle tier: whole objects as files in a local cache directory, bounded
 * by total bytes with least-recently-read eviction. The index lives in memory
 * (a Map in recency order) and is rebuilt from the files at startup, ordered
 * by mtime, which a hit refreshes. Files are written to `tmp/` and renamed
 * into place once verified, so a reader never sees a partial object and a
 * crash leaves only temporary files, removed on the next `open`.
 *
 * One process owns a directory: `open` clears `tmp/`, which would break a
 * second process's fills in progress.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open as openFile, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ExaiError } from '../../errors.js';
import { isObjectKey, type ByteRange } from '../storage/object-store.js';
import { resolveRange } from './byte-range.js';
import { scanEntries } from './disk-scan.js';
import type { TierStats } from './memory-tier.js';
import { VerifyingStream } from './verifying-stream.js';

export interface DiskTierOptions {
  directory: string;
  /** Upper bound of the bytes in cache files, counting fills in progress. */
  maxBytes: number;
}

export class DiskTier {
  readonly directory: string;
  readonly maxBytes: number;
  private readonly temporary: string;
  /** Least recently used first: a hit moves the key to the end. One object per file, compared by identity. */
  private readonly entries = new Map<string, { size: number }>();
  private bytes = 0;
  /** Bytes promised to fills in progress, so temporary files stay inside maxBytes too. */
  private reserved = 0;
  private readonly filling = new Map<string, AbortController>();
  /** Unlinks in flight, awaited before a new file for the same key is renamed into place. */
  private readonly removals = new Map<string, Promise<void>>();
  private hits = 0;
  private misses = 0;

  /** An empty index over `directory`; `DiskTier.open` also picks up what a previous run cached. */
  constructor(options: DiskTierOptions) {
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes <= 0) {
      throw new ExaiError('invalid_argument', "The disk tier's maxBytes must be a positive whole number of bytes.");
    }
    this.directory = path.resolve(options.directory);
    this.maxBytes = options.maxBytes;
    this.temporary = path.join(this.directory, 'tmp');
  }

  static async open(options: DiskTierOptions): Promise<DiskTier> {
    const tier = new DiskTier(options);
    await tier.rebuild();
    return tier;
  }

  private async rebuild(): Promise<void> {
    await mkdir(this.directory, { recursive: true, mode: 0o700 });
    // Whatever is in tmp was being written when a previous process stopped: it never became an entry.
    await rm(this.temporary, { recursive: true, force: true });
    await mkdir(this.temporary, { recursive: true, mode: 0o700 });
    const found = await scanEntries(this.directory);
    found.sort((a, b) => a.mtimeMs - b.mtimeMs || a.key.localeCompare(b.key));
    for (const entry of found) {
      this.entries.set(entry.key, { size: entry.size });
      this.bytes += entry.size;
    }
    // maxBytes may be lower than in the run that filled the directory.
    await Promise.all(this.evict());
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Whether `fill` would cache this object now: not already here or on its way, and it fits. */
  accepts(key: string, size: number): boolean {
    return (
      Number.isSafeInteger(size) && size >= 0 && size + this.reserved <= this.maxBytes && !this.entries.has(key) && !this.filling.has(key)
    );
  }

  /** The cached bytes (or a range of them), or undefined on a miss. A hit makes the entry the most recently used. */
  async open(key: string, range?: ByteRange): Promise<Readable | undefined> {
    const file = this.pathOf(key);
    const entry = this.entries.get(key);
    if (entry === undefined) {
      this.misses += 1;
      return undefined;
    }
    const bounds = range === undefined ? undefined : resolveRange(range, entry.size);
    let handle: FileHandle;
    try {
      handle = await openFile(file, 'r');
    } catch (error) {
      // Removed behind our back: forget the entry; other failures (too many open files) are just a miss.
      // (Only this file's entry: a new fill may have replaced it meanwhile.)
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && this.entries.get(key) === entry) this.unindex(key);
      this.misses += 1;
      return undefined;
    }
    this.hits += 1;
    if (this.entries.get(key) === entry) {
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
    // mtime carries the recency across restarts; losing it only makes eviction order less exact.
    const now = new Date();
    await handle.utimes(now, now).catch(() => undefined);
    // The open handle keeps the bytes readable even if eviction unlinks the file meanwhile (POSIX;
    // on Windows the unlink would fail and leave the file until the next eviction or restart).
    return handle.createReadStream(bounds ?? {});
  }

  /**
   * Caches `source` (all of the object, `size` bytes) under `key`, evicting
   * the least recently used entries to make room. Does nothing, and destroys
   * `source`, when the object is already cached, on its way, or larger than
   * the tier. Rejects when the stream fails or its bytes do not match the key;
   * nothing is left behind then.
   */
  async fill(key: string, source: Readable, size: number): Promise<void> {
    if (!isObjectKey(key)) source.destroy();
    const finalPath = this.pathOf(key);
    if (!this.accepts(key, size)) {
      source.destroy();
      return;
    }
    const abort = new AbortController();
    this.filling.set(key, abort);
    this.reserved += size;
    const temporaryPath = path.join(this.temporary, `${Date.now()}-${randomBytes(8).toString('hex')}`);
    let writer: WriteStream | undefined;
    try {
      // Make the room before writing, so the files on disk never pass the bound.
      await Promise.all(this.evict());
      await mkdir(this.temporary, { recursive: true, mode: 0o700 });
      const verify = new VerifyingStream(key.slice('sha256/'.length), size);
      writer = createWriteStream(temporaryPath, { mode: 0o600 });
      await pipeline(source, verify, writer, { signal: abort.signal });
      await this.removals.get(key);
      await mkdir(path.dirname(finalPath), { recursive: true, mode: 0o700 });
      await rename(temporaryPath, finalPath);
      if (abort.signal.aborted) {
        // Forgotten while being renamed: the purge wins.
        await rm(finalPath, { force: true });
        return;
      }
      this.entries.set(key, { size });
      this.bytes += size;
    } catch (error) {
      source.destroy();
      // An abort can land before the write stream has opened its file; the open still happens
      // afterwards, so wait for the stream to close before removing what it created.
      if (writer !== undefined && !writer.closed) await once(writer, 'close').catch(() => undefined);
      await rm(temporaryPath, { force: true });
      throw error;
    } finally {
      this.reserved -= size;
      this.filling.delete(key);
    }
  }

  /** Drops the object (it was purged), abandoning a fill in progress. */
  async forget(key: string): Promise<void> {
    this.pathOf(key);
    this.filling.get(key)?.abort(new ExaiError('not_found', `The object ${key} was purged while being cached.`));
    this.unindex(key);
    await this.remove(key);
  }

  stats(): TierStats {
    return { entries: this.entries.size, bytes: this.bytes, hits: this.hits, misses: this.misses };
  }

  private unindex(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.entries.delete(key);
    this.bytes -= entry.size;
  }

  /**
   * Drops least recently used entries until cached and promised bytes fit.
   * The index changes at once, so concurrent fills never count the same room
   * twice; the unlinks are returned to await. Files still being read stay
   * readable through their open handles (POSIX), though their space only
   * returns when those reads finish.
   */
  private evict(): Promise<void>[] {
    const removals: Promise<void>[] = [];
    for (const key of this.entries.keys()) {
      if (this.bytes + this.reserved <= this.maxBytes) break;
      this.unindex(key);
      removals.push(this.remove(key));
    }
    return removals;
  }

  /** Unlinks the key's file after any earlier unlink of it; never rejects. */
  private remove(key: string): Promise<void> {
    const previous = this.removals.get(key) ?? Promise.resolve();
    const removal: Promise<void> = previous
      .then(() => rm(this.pathOf(key), { force: true }))
      .catch(() => undefined)
      .finally(() => {
        if (this.removals.get(key) === removal) this.removals.delete(key);
      });
    this.removals.set(key, removal);
    return removal;
  }

  /** `<directory>/ab/cd/<hex>`; the key is checked first, so the path stays inside the directory. */
  private pathOf(key: string): string {
    if (!isObjectKey(key)) throw new ExaiError('invalid_argument', `${JSON.stringify(key)} is not an object key.`);
    const hex = key.slice('sha256/'.length);
    return path.join(this.directory, hex.slice(0, 2), hex.slice(2, 4), hex);
  }
}
