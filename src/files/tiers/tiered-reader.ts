/**
 * Reads an object from the fastest tier that has it: memory (small hot
 * objects), then the local disk cache, then the primary store. A whole-object
 * read from the primary store refills the faster tiers as it streams; range
 * reads pass straight through. Objects are immutable, so the only invalidation
 * is `forget` when one is purged.
 */
import { createHash } from 'node:crypto';
import { PassThrough, pipeline, type Readable } from 'node:stream';
import { ExaiError } from '../../errors.js';
import { isObjectKey, type ByteRange, type ObjectStore } from '../storage/object-store.js';
import { bufferStream, readAll } from './buffer-streams.js';
import { resolveRange } from './byte-range.js';
import type { DiskTier } from './disk-tier.js';
import { FillTee } from './fill-tee.js';
import type { MemoryTier } from './memory-tier.js';

export type Tier = 'memory' | 'disk' | 'primary';

export interface TieredReaderOptions {
  memory: MemoryTier;
  /** Undefined when no cache directory is configured. */
  disk: DiskTier | undefined;
  primary: ObjectStore;
}

export class TieredReader {
  private readonly memory: MemoryTier;
  private readonly disk: DiskTier | undefined;
  private readonly primary: ObjectStore;
  private readonly fills = new Set<Promise<void>>();
  /** Bumped by every forget: a read that began before one must not cache what it read. */
  private forgets = 0;

  constructor(options: TieredReaderOptions) {
    this.memory = options.memory;
    this.disk = options.disk;
    this.primary = options.primary;
  }

  /**
   * The object's bytes (or the inclusive `range` of them) and the tier they
   * come from. `size` is the object's size from its metadata row: it decides
   * which tiers may hold it and bounds the range. not_found when no tier has it.
   */
  async open(key: string, size: number, range?: ByteRange): Promise<{ stream: Readable; tier: Tier }> {
    if (!isObjectKey(key)) throw new ExaiError('invalid_argument', `${JSON.stringify(key)} is not an object key.`);
    if (!Number.isSafeInteger(size) || size < 0) throw new ExaiError('invalid_argument', `${size} is not an object size.`);
    const bounds = range === undefined ? undefined : resolveRange(range, size);
    const epoch = this.forgets;
    const small = size <= this.memory.maxEntryBytes;

    const inMemory = small ? this.memory.get(key) : undefined;
    if (inMemory !== undefined) {
      return { stream: bufferStream(bounds === undefined ? inMemory : inMemory.subarray(bounds.start, bounds.end + 1)), tier: 'memory' };
    }

    const fromDisk = await this.disk?.open(key, bounds);
    if (fromDisk !== undefined) {
      if (bounds !== undefined || !small) return { stream: fromDisk, tier: 'disk' };
      const bytes = await readAll(fromDisk);
      if (this.forgets === epoch) this.memory.set(key, bytes);
      return { stream: bufferStream(bytes), tier: 'disk' };
    }

    if (bounds !== undefined) return { stream: await this.primary.get(key, bounds), tier: 'primary' };
    const source = await this.primary.get(key);
    return { stream: this.feedCaches(key, size, source, epoch), tier: 'primary' };
  }

  /** Drops a purged object from the caches, abandoning a disk fill in progress. */
  async forget(key: string): Promise<void> {
    if (!isObjectKey(key)) throw new ExaiError('invalid_argument', `${JSON.stringify(key)} is not an object key.`);
    this.forgets += 1;
    this.memory.forget(key);
    await this.disk?.forget(key);
  }

  /** Resolves once the disk fills started so far have finished (or failed): for shutdown and tests. */
  async idle(): Promise<void> {
    while (this.fills.size > 0) await Promise.all([...this.fills]);
  }

  /** `source` as the caller's stream, also filling the disk tier and, for a small object, memory. */
  private feedCaches(key: string, size: number, source: Readable, epoch: number): Readable {
    // Purged while the primary read was opening: serve it, cache nothing.
    if (this.forgets !== epoch) return source;
    const small = size <= this.memory.maxEntryBytes;
    const side = this.disk?.accepts(key, size) === true ? new PassThrough() : undefined;
    if (!small && side === undefined) return source;

    const tee = new FillTee({
      side,
      keepUpTo: small ? size : undefined,
      onWhole: (bytes) => {
        // Memory has no fill of its own to check the bytes, so they are checked here.
        if (this.forgets === epoch && bytes.length === size && sha256Of(bytes) === key.slice('sha256/'.length)) this.memory.set(key, bytes);
      },
    });
    // Errors reach the caller through `tee`; a caller destroying `tee` destroys `source`.
    pipeline(source, tee, () => undefined);
    if (side !== undefined && this.disk !== undefined) {
      // A failed fill only means the next read goes to the primary store again.
      const fill: Promise<void> = this.disk
        .fill(key, side, size)
        .catch(() => undefined)
        .finally(() => this.fills.delete(fill));
      this.fills.add(fill);
    }
    return tee;
  }
}

function sha256Of(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
