/**
 * The fastest tier: whole small objects in process memory, least recently used
 * dropped first once the bytes held pass `maxBytes`. Objects are immutable, so
 * an entry is only ever removed by eviction or `forget` (a purge).
 */
import { LRUCache } from 'lru-cache';
import { ExaiError } from '../../errors.js';

export interface MemoryTierOptions {
  /** Upper bound of the bytes held across all entries. */
  maxBytes: number;
  /** Larger objects are never held: they would push out many small hot ones. */
  maxEntryBytes: number;
}

export interface TierStats {
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
}

export class MemoryTier {
  readonly maxBytes: number;
  readonly maxEntryBytes: number;
  private readonly entries: LRUCache<string, Buffer>;
  private hits = 0;
  private misses = 0;

  constructor(options: MemoryTierOptions) {
    for (const [name, value] of Object.entries(options)) {
      if (!Number.isSafeInteger(value) || value <= 0) throw new ExaiError('invalid_argument', `The memory tier's ${name} must be a positive whole number of bytes.`);
    }
    this.maxBytes = options.maxBytes;
    this.maxEntryBytes = Math.min(options.maxEntryBytes, options.maxBytes);
    this.entries = new LRUCache<string, Buffer>({
      maxSize: this.maxBytes,
      maxEntrySize: this.maxEntryBytes,
      // lru-cache needs a positive size; an empty object counts as one byte.
      sizeCalculation: (bytes) => Math.max(1, bytes.length),
    });
  }

  /** The object's bytes, shared with the cache: callers must not modify them. */
  get(key: string): Buffer | undefined {
    const bytes = this.entries.get(key);
    if (bytes === undefined) this.misses += 1;
    else this.hits += 1;
    return bytes;
  }

  /** Holds `bytes` (not copied) unless larger than maxEntryBytes. */
  set(key: string, bytes: Buffer): void {
    if (bytes.length > this.maxEntryBytes) return;
    this.entries.set(key, bytes);
  }

  forget(key: string): void {
    this.entries.delete(key);
  }

  stats(): TierStats {
    return { entries: this.entries.size, bytes: this.entries.calculatedSize, hits: this.hits, misses: this.misses };
  }
}
