/**
 * A cache that counts its reads: a hit is a read that found something, a miss
 * one that did not (absent, hidden by an announced append, or the backend
 * unreachable — every case that sends the reader to the database). Everything
 * else passes straight through. The counts feed `exai_cache_hits_total` and
 * `exai_cache_misses_total`.
 */
import type { AppendOutcome, Cache, CachedLog, CacheHealth } from './types.js';

export interface CacheReadCounts {
  hits: number;
  misses: number;
}

export class CountingCache implements Cache {
  private hits = 0;
  private misses = 0;

  constructor(private readonly inner: Cache) {}

  get backend(): Cache['backend'] {
    return this.inner.backend;
  }

  /** Reads of values and logs since this cache was opened. */
  counts(): CacheReadCounts {
    return { hits: this.hits, misses: this.misses };
  }

  private count<T>(found: T | undefined): T | undefined {
    if (found === undefined) this.misses += 1;
    else this.hits += 1;
    return found;
  }

  async get(key: string): Promise<string | undefined> {
    return this.count(await this.inner.get(key));
  }

  set(key: string, value: string, ttlMs: number): Promise<void> {
    return this.inner.set(key, value, ttlMs);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  async getLog(key: string): Promise<CachedLog | undefined> {
    return this.count(await this.inner.getLog(key));
  }

  fillLog(key: string, log: CachedLog, ttlMs: number): Promise<boolean> {
    return this.inner.fillLog(key, log, ttlMs);
  }

  beginAppend(key: string): Promise<string> {
    return this.inner.beginAppend(key);
  }

  appendLog(key: string, expectedLength: number, entries: string[], ttlMs: number, token?: string): Promise<AppendOutcome> {
    return this.inner.appendLog(key, expectedLength, entries, ttlMs, token);
  }

  endAppend(key: string, token: string, options: { drop: boolean }): Promise<void> {
    return this.inner.endAppend(key, token, options);
  }

  deleteLog(key: string): Promise<void> {
    return this.inner.deleteLog(key);
  }

  invalidateLog(key: string): Promise<void> {
    return this.inner.invalidateLog(key);
  }

  health(): CacheHealth {
    return this.inner.health();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
