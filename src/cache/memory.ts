/** In-process cache: bounded by entries and by size, with a TTL (lru-cache). */
import { LRUCache } from 'lru-cache';
import type { AppendOutcome, Cache, CachedLog, CacheHealth } from './types.js';
import { randomUUID } from 'node:crypto';
import { floorTtlMs, pendingStaleMs } from './types.js';

type Entry = { kind: 'value'; value: string } | { kind: 'log'; head: string; entries: string[]; size: number };

export interface MemoryCacheOptions {
  maxEntries: number;
  /** Upper bound of the text held, counted in UTF-16 code units. */
  maxBytes: number;
  /** After how long an unsettled append announcement counts as abandoned (tests shorten it). */
  announcementStaleMs?: number;
}

function logName(key: string): string {
  return `l:${key}`;
}

function logSize(head: string, entries: readonly string[]): number {
  let size = head.length;
  for (const entry of entries) size += entry.length;
  return size;
}

export class MemoryCache implements Cache {
  readonly backend = 'memory' as const;
  private readonly entries: LRUCache<string, Entry>;
  private readonly floors: LRUCache<string, number>;
  /** Open append announcements: log key → token → when announced. */
  private readonly pending = new Map<string, Map<string, number>>();

  private readonly staleMs: number;

  constructor(options: MemoryCacheOptions) {
    this.staleMs = options.announcementStaleMs ?? pendingStaleMs;
    this.entries = new LRUCache<string, Entry>({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      sizeCalculation: (entry) => Math.max(1, entry.kind === 'value' ? entry.value.length : entry.size),
      ttlAutopurge: false,
    });
    this.floors = new LRUCache<string, number>({ max: Math.max(1000, options.maxEntries), ttl: floorTtlMs });
  }

  // Values and logs live under separate names, as they do in Redis.
  async get(key: string): Promise<string | undefined> {
    const entry = this.entries.get(`v:${key}`);
    return entry?.kind === 'value' ? entry.value : undefined;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.entries.set(`v:${key}`, { kind: 'value', value }, { ttl: Math.max(1, Math.round(ttlMs)) });
  }

  async delete(key: string): Promise<void> {
    this.entries.delete(`v:${key}`);
  }

  /** True while an append to this log is announced; a stale announcement is discarded with the log. */
  private blockedByPending(key: string): boolean {
    const tokens = this.pending.get(key);
    if (tokens === undefined) return false;
    const now = Date.now();
    for (const [token, since] of tokens) {
      if (now - since > this.staleMs) {
        tokens.delete(token);
        this.entries.delete(logName(key));
      }
    }
    if (tokens.size > 0) return true;
    this.pending.delete(key);
    return false;
  }

  /** Stores a log; false when it is larger than the whole cache may hold. */
  private storeLog(key: string, head: string, entries: string[], ttlMs: number): boolean {
    const name = logName(key);
    this.entries.set(name, { kind: 'log', head, entries, size: logSize(head, entries) }, { ttl: Math.max(1, Math.round(ttlMs)) });
    return this.entries.has(name);
  }

  private cachedLog(key: string): Extract<Entry, { kind: 'log' }> | undefined {
    const entry = this.entries.get(logName(key));
    return entry?.kind === 'log' ? entry : undefined;
  }

  async getLog(key: string): Promise<CachedLog | undefined> {
    if (this.blockedByPending(key)) return undefined;
    const entry = this.cachedLog(key);
    return entry === undefined ? undefined : { head: entry.head, entries: entry.entries.slice() };
  }

  async fillLog(key: string, log: CachedLog, ttlMs: number): Promise<boolean> {
    if (this.blockedByPending(key)) return false;
    const floor = this.floors.get(key);
    if (floor !== undefined && floor > log.entries.length) return false;
    const existing = this.cachedLog(key);
    if (existing !== undefined && existing.entries.length >= log.entries.length) return false;
    return this.storeLog(key, log.head, log.entries.slice(), ttlMs);
  }

  async beginAppend(key: string): Promise<string> {
    const token = randomUUID();
    const tokens = this.pending.get(key) ?? new Map<string, number>();
    tokens.set(token, Date.now());
    this.pending.set(key, tokens);
    return token;
  }

  private closeAnnouncement(key: string, token: string | undefined): void {
    if (token === undefined) return;
    const tokens = this.pending.get(key);
    tokens?.delete(token);
    if (tokens?.size === 0) this.pending.delete(key);
  }

  async endAppend(key: string, token: string, options: { drop: boolean }): Promise<void> {
    this.closeAnnouncement(key, token);
    if (options.drop) this.entries.delete(logName(key));
  }

  async appendLog(key: string, expectedLength: number, entries: string[], ttlMs: number, token?: string): Promise<AppendOutcome> {
    this.closeAnnouncement(key, token);
    const newLength = expectedLength + entries.length;
    const existing = this.cachedLog(key);
    if (existing !== undefined && existing.entries.length === expectedLength) {
      if (this.storeLog(key, existing.head, existing.entries.concat(entries), ttlMs)) return 'appended';
    } else if (existing !== undefined) {
      this.entries.delete(logName(key));
    }
    this.floors.set(key, Math.max(newLength, this.floors.get(key) ?? 0));
    return existing === undefined ? 'absent' : 'dropped';
  }

  async deleteLog(key: string): Promise<void> {
    this.entries.delete(logName(key));
  }

  async invalidateLog(key: string): Promise<void> {
    this.entries.delete(logName(key));
    this.floors.set(key, Number.MAX_SAFE_INTEGER);
  }

  health(): CacheHealth {
    return { backend: 'memory', status: 'ok' };
  }

  async close(): Promise<void> {
    this.entries.clear();
    this.floors.clear();
    this.pending.clear();
  }
}
