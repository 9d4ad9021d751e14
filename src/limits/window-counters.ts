/**
 * Per-subject counts in one-minute fixed windows (requests, model tokens, authentication failures),
 * on rate-limiter-flexible: RateLimiterRedis (an atomic Lua INCRBY, so instances sharing Redis share
 * one count) with a RateLimiterMemory twin used when there is no Redis or it cannot answer.
 *
 * The library fixes `points` per limiter, so there is one limiter per distinct limit. In Redis they
 * share one key per subject, so a changed limit applies to the count so far; the in-process twins
 * each keep their own, so there a changed limit starts counting afresh.
 */
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { RedisLink } from './redis-link.js';
import { windowSeconds } from './types.js';

export interface WindowCount {
  /** Points counted in the current window (0 when none has started). */
  consumed: number;
  /** Until the window ends and the count starts again from 0. */
  msBeforeReset: number;
}

export interface ConsumeOutcome extends WindowCount {
  allowed: boolean;
}

function countOf(res: RateLimiterRes | null): WindowCount {
  return res === null ? { consumed: 0, msBeforeReset: 0 } : { consumed: res.consumedPoints, msBeforeReset: res.msBeforeNext };
}

export class WindowCounters {
  private readonly shared = new Map<number, RateLimiterRedis>();
  private readonly local = new Map<number, RateLimiterMemory>();

  /** `keyPrefix` names the Redis keys: `<keyPrefix>:<subject>`. */
  constructor(
    private readonly keyPrefix: string,
    private readonly link: RedisLink | undefined,
  ) {}

  /** Counts one point; refused (and still counted, which moves no window) when that goes past `limit`. */
  consume(subject: string, limit: number): Promise<ConsumeOutcome> {
    return this.run(limit, (limiter) =>
      limiter.consume(subject, 1).then(
        (res) => ({ allowed: true, ...countOf(res) }),
        (rejection: unknown) => {
          // The library rejects with its result when over the limit, and with an Error when the store failed.
          if (rejection instanceof RateLimiterRes) return { allowed: false, ...countOf(rejection) };
          throw rejection;
        },
      ),
    );
  }

  /** The current count, counting nothing. */
  peek(subject: string, limit: number): Promise<WindowCount> {
    return this.run(limit, async (limiter) => countOf(await limiter.get(subject)));
  }

  /** Adds `points` whatever the limit (penalty() never refuses). */
  add(subject: string, points: number, limit: number): Promise<WindowCount> {
    return this.run(limit, async (limiter) => countOf(await limiter.penalty(subject, points)));
  }

  private run<T>(limit: number, operation: (limiter: RateLimiterAbstract) => Promise<T>): Promise<T> {
    const inProcess = () => operation(this.localLimiter(limit));
    if (this.link === undefined) return inProcess();
    return this.link.attempt(() => operation(this.sharedLimiter(limit, this.link!)), inProcess);
  }

  private sharedLimiter(points: number, link: RedisLink): RateLimiterRedis {
    let limiter = this.shared.get(points);
    if (limiter === undefined) {
      limiter = new RateLimiterRedis({ storeClient: link.client, keyPrefix: this.keyPrefix, points, duration: windowSeconds });
      this.shared.set(points, limiter);
    }
    return limiter;
  }

  private localLimiter(points: number): RateLimiterMemory {
    let limiter = this.local.get(points);
    if (limiter === undefined) {
      limiter = new RateLimiterMemory({ keyPrefix: this.keyPrefix, points, duration: windowSeconds });
      this.local.set(points, limiter);
    }
    return limiter;
  }
}
