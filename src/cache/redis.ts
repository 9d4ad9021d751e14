/**
 * Redis cache (ioredis). Redis going away costs speed, never a failed call:
 * while it is unreachable every read is a miss and every write a no-op, one
 * warning is logged per outage, and health reports `degraded`. Writes that could
 * not reach Redis are remembered and their keys deleted before the cache is
 * trusted again, so no stale thread survives an outage.
 */
import { Redis, ReplyError } from 'ioredis';
import type { Logger } from '../logger.js';
import { redactUrl } from '../logger.js';
import type { AppendOutcome, Cache, CachedLog, CacheHealth } from './types.js';
import { randomUUID } from 'node:crypto';
import { floorTtlMs, pendingStaleMs } from './types.js';
import { outageTolerantOptions } from './redis-options.js';
import { appendLogScript, beginAppendScript, endAppendScript, fillLogScript } from './redis-scripts.js';

export interface RedisCacheOptions {
  url: string;
  commandTimeoutMs: number;
  logger: Logger;
  keyPrefix?: string;
  /** After how long an unsettled append announcement counts as abandoned (tests shorten it). */
  announcementStaleMs?: number;
}

/** More keys than this awaiting invalidation, and the whole namespace is cleared on recovery instead. */
const maxPendingInvalidations = 10_000;

type LogKeys = [l: string, h: string, f: string, p: string];

type LogCommands = {
  exaiFillLog(...args: [...LogKeys, ttl: number, staleMs: number, head: string, ...entries: string[]]): Promise<number>;
  exaiBeginAppend(l: string, h: string, p: string, token: string, staleMs: number): Promise<number>;
  exaiAppendLog(...args: [...LogKeys, expected: number, ttl: number, floorTtl: number, token: string, staleMs: number, ...entries: string[]]): Promise<number>;
  exaiEndAppend(l: string, h: string, p: string, token: string, staleMs: number, drop: string): Promise<number>;
};

export class RedisCache implements Cache {
  readonly backend = 'redis' as const;
  private readonly client: Redis & LogCommands;
  private readonly logger: Logger;
  private readonly prefix: string;
  private readonly where: string;
  private readonly staleMs: number;
  private healthy = false;
  private outageLogged = false;
  private lastError: string | undefined;
  private readonly pending = new Set<string>();
  private namespaceUntrusted = false;
  /** Identity of the Redis server process last seen. */
  private runId: string | undefined;
  private closed = false;

  constructor(options: RedisCacheOptions) {
    this.logger = options.logger;
    this.prefix = options.keyPrefix ?? 'exai:';
    this.staleMs = options.announcementStaleMs ?? pendingStaleMs;
    this.where = redactUrl(options.url) ?? 'REDIS_URL';
    this.client = new Redis(options.url, outageTolerantOptions(options.commandTimeoutMs)) as Redis & LogCommands;
    this.client.defineCommand('exaiFillLog', { numberOfKeys: 4, lua: fillLogScript });
    this.client.defineCommand('exaiBeginAppend', { numberOfKeys: 3, lua: beginAppendScript });
    this.client.defineCommand('exaiAppendLog', { numberOfKeys: 4, lua: appendLogScript });
    this.client.defineCommand('exaiEndAppend', { numberOfKeys: 3, lua: endAppendScript });
    this.client.on('ready', () => void this.recover());
    this.client.on('error', (error: Error) => this.markDown(error.message));
    this.client.on('close', () => this.markDown('connection closed'));
  }

  /** Connects; a failure is logged and the cache starts degraded, retrying in the background. */
  async connect(): Promise<void> {
    try {
      await this.client.connect();
    } catch (error) {
      this.markDown((error as Error).message);
    }
  }

  private markDown(reason: string): void {
    if (this.closed) return;
    this.healthy = false;
    this.lastError = reason;
    if (!this.outageLogged) {
      this.outageLogged = true;
      this.logger.warn({ redis: this.where, reason }, 'Redis unavailable: serving from Postgres until it returns');
    }
  }

  private async recover(): Promise<void> {
    try {
      // A Redis that restarted (from a snapshot) or failed over to a replica may have lost writes made
      // since: nothing it holds for us can be trusted, whatever this process noticed.
      const runId = /run_id:(\w+)/.exec(await this.client.info('server'))?.[1];
      if (this.runId !== undefined && runId !== this.runId) this.namespaceUntrusted = true;
      this.runId = runId;
      // Writes may keep failing over into `pending` while this runs: drain until it stays empty.
      while (this.namespaceUntrusted || this.pending.size > 0) {
        if (this.namespaceUntrusted) {
          this.namespaceUntrusted = false;
          this.pending.clear();
          await this.deleteNamespace();
          continue;
        }
        const key = this.pending.values().next().value as string;
        this.pending.delete(key);
        try {
          await this.dropKey(key);
        } catch (error) {
          this.remember(key);
          throw error;
        }
      }
      this.healthy = true;
      this.lastError = undefined;
      if (this.outageLogged) this.logger.info({ redis: this.where }, 'Redis is back: cache in use again');
      this.outageLogged = false;
    } catch (error) {
      this.markDown((error as Error).message);
    }
  }

  private async dropKey(key: string): Promise<void> {
    const [l, h, , p] = this.logKeys(key);
    await this.client.del(l, h, p, this.valueKey(key));
  }

  private async deleteNamespace(): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.client.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 500);
      if (keys.length > 0) await this.client.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  }

  private valueKey(key: string): string {
    return `${this.prefix}v:${key}`;
  }

  private logKeys(key: string): LogKeys {
    const base = `${this.prefix}log:{${key}}`;
    return [`${base}:l`, `${base}:h`, `${base}:f`, `${base}:p`];
  }

  /** A write that did not reach Redis: its key must not be trusted after the outage. */
  private remember(key: string): void {
    if (this.pending.size >= maxPendingInvalidations) this.namespaceUntrusted = true;
    else this.pending.add(key);
  }

  private async attempt<T>(operation: () => Promise<T>, fallback: T, key?: string): Promise<T> {
    if (!this.healthy) {
      if (key !== undefined) this.remember(key);
      return fallback;
    }
    try {
      return await operation();
    } catch (error) {
      if (error instanceof ReplyError) {
        // Redis answered, with an error: it is up. A write may have half-happened, so drop its key.
        this.logger.warn({ redis: this.where, err: (error as Error).message }, 'Redis refused a cache command');
        if (key !== undefined) await this.dropKey(key).catch(() => this.remember(key));
        return fallback;
      }
      if (key !== undefined) this.remember(key);
      this.markDown((error as Error).message);
      // A timeout leaves the connection "ready"; reconnect so recovery (and its invalidations) runs.
      this.client.disconnect(true);
      return fallback;
    }
  }

  get(key: string): Promise<string | undefined> {
    return this.attempt(async () => (await this.client.get(this.valueKey(key))) ?? undefined, undefined);
  }

  set(key: string, value: string, ttlMs: number): Promise<void> {
    return this.attempt(async () => {
      await this.client.set(this.valueKey(key), value, 'PX', Math.max(1, Math.round(ttlMs)));
    }, undefined, key);
  }

  delete(key: string): Promise<void> {
    return this.attempt(async () => {
      await this.client.del(this.valueKey(key));
    }, undefined, key);
  }

  getLog(key: string): Promise<CachedLog | undefined> {
    // One command: the visible log is whole, and hidden while an append is in flight.
    return this.attempt(async () => {
      const list = await this.client.lrange(this.logKeys(key)[0], 0, -1);
      return list.length === 0 ? undefined : { head: list[0]!, entries: list.slice(1) };
    }, undefined);
  }

  fillLog(key: string, log: CachedLog, ttlMs: number): Promise<boolean> {
    // A failed fill leaves nothing behind, so it needs no invalidation later.
    return this.attempt(async () => {
      const stored = await this.client.exaiFillLog(...this.logKeys(key), ttlMs, this.staleMs, log.head, ...log.entries);
      return stored === 1;
    }, false);
  }

  beginAppend(key: string): Promise<string> {
    const token = randomUUID();
    // Unreachable now: the key is remembered and dropped on recovery, which covers this write too.
    return this.attempt(async () => {
      const [l, h, , p] = this.logKeys(key);
      await this.client.exaiBeginAppend(l, h, p, token, this.staleMs);
      return token;
    }, token, key);
  }

  endAppend(key: string, token: string, options: { drop: boolean }): Promise<void> {
    return this.attempt(async () => {
      const [l, h, , p] = this.logKeys(key);
      await this.client.exaiEndAppend(l, h, p, token, this.staleMs, options.drop ? '1' : '0');
    }, undefined, key);
  }

  appendLog(key: string, expectedLength: number, entries: string[], ttlMs: number, token = ''): Promise<AppendOutcome> {
    return this.attempt<AppendOutcome>(async () => {
      const outcome = await this.client.exaiAppendLog(...this.logKeys(key), expectedLength, ttlMs, floorTtlMs, token, this.staleMs, ...entries);
      return outcome === 1 ? 'appended' : outcome === 2 ? 'dropped' : 'absent';
    }, 'unavailable', key);
  }

  deleteLog(key: string): Promise<void> {
    return this.attempt(async () => {
      const [l, h] = this.logKeys(key);
      await this.client.del(l, h);
    }, undefined, key);
  }

  invalidateLog(key: string): Promise<void> {
    return this.attempt(async () => {
      const [l, h, f] = this.logKeys(key);
      await this.client.multi().del(l, h).set(f, Number.MAX_SAFE_INTEGER, 'PX', floorTtlMs).exec();
    }, undefined, key);
  }

  health(): CacheHealth {
    if (this.healthy) return { backend: 'redis', status: 'ok' };
    return { backend: 'redis', status: 'degraded', detail: `Redis unavailable: ${this.lastError ?? 'connecting'}` };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.healthy = false;
    this.client.disconnect();
  }
}
