/**
 * The rate limits' own Redis connection. A limit must never fail or stall a call because Redis is
 * away: every operation goes through attempt(), which runs the in-process fallback instead when Redis
 * is not connected or a command fails, and one warning is logged per outage.
 *
 * The fallback is wired here rather than through rate-limiter-flexible's insuranceLimiter because
 * that one swallows the error, and the error decides what happens next: a timeout leaves a "ready"
 * connection that would make every later command wait for the timeout too, so it forces a reconnect;
 * an error reply (say WRONGTYPE on one key) means Redis is up: no reconnect, and no outage.
 */
import { Redis, ReplyError } from 'ioredis';
import type { Logger } from '../logger.js';
import { redactUrl } from '../logger.js';
import { outageTolerantOptions } from '../cache/redis-options.js';

const refusalLogIntervalMs = 60_000;

export interface RedisLinkOptions {
  url: string;
  commandTimeoutMs: number;
  logger: Logger;
}

export class RedisLink {
  readonly client: Redis;
  private readonly logger: Logger;
  private readonly where: string;
  private inOutage = false;
  /** Set when this side dropped a connection that timed out: it reads "ready" until the socket has closed. */
  private dropped = false;
  private refusalLoggedAt = Number.NEGATIVE_INFINITY;
  private closed = false;

  constructor(options: RedisLinkOptions) {
    this.logger = options.logger;
    this.where = redactUrl(options.url) ?? 'REDIS_URL';
    this.client = new Redis(options.url, outageTolerantOptions(options.commandTimeoutMs));
    this.client.on('ready', () => {
      this.dropped = false;
      this.recovered();
    });
    this.client.on('error', (error: Error) => this.failed(error.message));
    this.client.on('close', () => this.failed('connection closed'));
  }

  /** Connects; an unreachable Redis is logged and retried in the background, never thrown. */
  async connect(): Promise<void> {
    try {
      await this.client.connect();
    } catch (error) {
      this.failed((error as Error).message);
    }
  }

  /** Runs `operation` on Redis, or `fallback` in process when Redis cannot answer it. */
  async attempt<T>(operation: () => Promise<T>, fallback: () => Promise<T>): Promise<T> {
    if (this.client.status !== 'ready' || this.dropped) {
      this.failed(this.dropped ? 'reconnecting after a timeout' : `connection ${this.client.status}`);
      return fallback();
    }
    let result: T;
    try {
      result = await operation();
    } catch (error) {
      if (error instanceof ReplyError) {
        this.refused((error as Error).message);
        return fallback();
      }
      this.failed((error as Error).message);
      if (this.client.status === 'ready' && !this.dropped) {
        this.dropped = true;
        this.client.disconnect(true);
      }
      return fallback();
    }
    this.recovered();
    return result;
  }

  private failed(reason: string): void {
    if (this.closed || this.inOutage) return;
    this.inOutage = true;
    this.logger.warn({ redis: this.where, reason }, 'Redis unavailable: rate limits apply per instance until it returns');
  }

  /** Redis answered with an error: it is up, so this is no outage; a persistent error warns once a minute, not once a call. */
  private refused(reason: string): void {
    const now = Date.now();
    if (this.closed || now - this.refusalLoggedAt < refusalLogIntervalMs) return;
    this.refusalLoggedAt = now;
    this.logger.warn({ redis: this.where, err: reason }, 'Redis refused a rate-limit command: limiting that call in process');
  }

  private recovered(): void {
    if (this.closed || !this.inOutage) return;
    this.inOutage = false;
    this.logger.info({ redis: this.where }, 'Redis is back: rate limits are shared across instances again');
  }

  close(): void {
    this.closed = true;
    this.client.disconnect();
  }
}
