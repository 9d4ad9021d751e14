/**
 * Per-subject request, token and concurrency limits, per-provider concurrency and authentication
 * lockouts, shared by every instance through Redis when REDIS_URL is set, else in process.
 *
 * admit() checks in the order that lets a refusal take nothing: the token budget (a read), then a
 * concurrency slot, then one request point; when the request point is refused the slot is given back.
 * So a call refused for tokens or concurrency is not counted as a request, while one refused for the
 * request rate is (that changes nothing: the count is already past the limit, and the window does not
 * move). Tokens are charged after the call, so the one call that crosses the budget is let through
 * in full and the budget may overshoot by that call's tokens; calls after it are refused.
 *
 * Without Redis, or while it is unreachable, each instance limits on its own: N instances then let
 * through up to N times each limit.
 */
import type { Logger } from '../logger.js';
import type { Lease, LeaseSets } from './leases.js';
import { MemoryLeases } from './memory-leases.js';
import { RedisLeases } from './redis-leases.js';
import { RedisLink } from './redis-link.js';
import { requestLimitReached, retryAfterSeconds, tokenBudgetReached, tooManyCalls, tooManyProviderCalls } from './refusals.js';
import { effectiveLimit, type CallPermit, type LimitSettings } from './types.js';
import { WindowCounters } from './window-counters.js';

export type { CallPermit, LimitSettings } from './types.js';

export interface RateLimitsOptions {
  /** Redis shared by the instances; undefined limits in process. */
  redisUrl: string | undefined;
  /** How long one Redis command may take before the limits fall back to in-process counting. */
  commandTimeoutMs: number;
  logger: Logger;
  /** Prefix of every Redis key (default `exai-rl:`). */
  keyPrefix?: string;
  /** How long a concurrency slot stays taken if never released (a crashed process); must outlast the longest call. */
  callLeaseMs: number;
}

// Outside the cache's `exai:` namespace, which the cache may clear after a Redis restart.
const defaultKeyPrefix = 'exai-rl:';

const noPermit: CallPermit = {
  chargeTokens: async () => undefined,
  release: async () => undefined,
};

export class RateLimits {
  readonly backend: 'redis' | 'memory';
  private readonly requests: WindowCounters;
  private readonly tokens: WindowCounters;
  private readonly authFailures: WindowCounters;
  private readonly leases: LeaseSets;

  private constructor(
    private readonly link: RedisLink | undefined,
    keyPrefix: string,
    callLeaseMs: number,
  ) {
    this.backend = link === undefined ? 'memory' : 'redis';
    this.requests = new WindowCounters(`${keyPrefix}req`, link);
    this.tokens = new WindowCounters(`${keyPrefix}tok`, link);
    this.authFailures = new WindowCounters(`${keyPrefix}authfail`, link);
    const inProcess = new MemoryLeases(callLeaseMs);
    this.leases = link === undefined ? inProcess : new RedisLeases(link, keyPrefix, callLeaseMs, inProcess);
  }

  /** Never fails for want of Redis: an unreachable one is logged and retried while limits apply in process. */
  static async open(options: RateLimitsOptions): Promise<RateLimits> {
    if (!Number.isInteger(options.callLeaseMs) || options.callLeaseMs < 1) {
      throw new RangeError(`callLeaseMs must be a positive whole number of milliseconds, not ${options.callLeaseMs}`);
    }
    const keyPrefix = options.keyPrefix ?? defaultKeyPrefix;
    if (options.redisUrl === undefined) return new RateLimits(undefined, keyPrefix, options.callLeaseMs);
    const link = new RedisLink({ url: options.redisUrl, commandTimeoutMs: options.commandTimeoutMs, logger: options.logger });
    await link.connect();
    return new RateLimits(link, keyPrefix, options.callLeaseMs);
  }

  /**
   * Before a tool call: counts one request, checks the token budget has not run out, takes a concurrency slot.
   * Throws ExaiError('rate_limited', message, { details: { retry_after_s } }) when over any limit, having taken nothing.
   */
  async admit(subject: string, limits: LimitSettings): Promise<CallPermit> {
    const requestLimit = effectiveLimit(limits.requestsPerMinute);
    const tokenLimit = effectiveLimit(limits.tokensPerMinute);
    const callLimit = effectiveLimit(limits.concurrentCalls);

    if (tokenLimit !== undefined) {
      const used = await this.tokens.peek(subject, tokenLimit);
      if (used.consumed >= tokenLimit) throw tokenBudgetReached(tokenLimit, used.msBeforeReset);
    }
    let slot: Lease | undefined;
    if (callLimit !== undefined) {
      slot = await this.leases.acquire(`calls:${subject}`, callLimit);
      if (slot === undefined) throw tooManyCalls(callLimit);
    }
    const release = () => slot?.release() ?? Promise.resolve();
    if (requestLimit !== undefined) {
      const counted = await this.requests.consume(subject, requestLimit).catch(async (error: unknown) => {
        await release();
        throw error;
      });
      if (!counted.allowed) {
        await release();
        throw requestLimitReached(requestLimit, counted.msBeforeReset);
      }
    }
    return {
      chargeTokens: async (tokens: number) => {
        // Whole tokens: the Redis counter only takes integers, and rounding up never undercharges.
        const points = Math.ceil(tokens);
        if (tokenLimit === undefined || !(points > 0) || !Number.isFinite(points)) return;
        await this.tokens.add(subject, points, tokenLimit);
      },
      release,
    };
  }

  /** Per provider concurrency across instances (subject = provider name). Same contract as admit(). */
  async admitProvider(provider: string, maxConcurrent: number): Promise<CallPermit> {
    const limit = effectiveLimit(maxConcurrent);
    if (limit === undefined) return noPermit;
    const lease = await this.leases.acquire(`provider:${provider}`, limit);
    if (lease === undefined) throw tooManyProviderCalls(provider, limit);
    return { chargeTokens: noPermit.chargeTokens, release: () => lease.release() };
  }

  /** Authentication failures per source address: call on each failure. Limited from the `maxPerMinute`th failure in a window. */
  async noteAuthFailure(source: string, maxPerMinute: number): Promise<{ limited: boolean; retryAfterS: number; count: number }> {
    const limit = effectiveLimit(maxPerMinute);
    if (limit === undefined) return { limited: false, retryAfterS: 0, count: 0 };
    return lockout(await this.authFailures.add(source, 1, limit), limit);
  }

  /** True if that source is currently locked out (checked before trying credentials). Counts nothing. */
  async authLockedOut(source: string, maxPerMinute: number): Promise<{ limited: boolean; retryAfterS: number; count: number }> {
    const limit = effectiveLimit(maxPerMinute);
    if (limit === undefined) return { limited: false, retryAfterS: 0, count: 0 };
    return lockout(await this.authFailures.peek(source, limit), limit);
  }

  async close(): Promise<void> {
    this.link?.close();
  }
}

function lockout(count: { consumed: number; msBeforeReset: number }, limit: number): { limited: boolean; retryAfterS: number; count: number } {
  const limited = count.consumed >= limit;
  return { limited, retryAfterS: limited ? retryAfterSeconds(count.msBeforeReset) : 0, count: count.consumed };
}
