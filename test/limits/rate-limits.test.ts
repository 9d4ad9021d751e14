/**
 * Rate, token, concurrency and authentication limits on the in-process backend and on real Redis
 * (shared by two instances, as several exai processes would share it), and through Redis outages on
 * private redis-server processes (never the shared test server, which other suites use in parallel).
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ExaiError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { RateLimits, type CallPermit, type LimitSettings } from '../../src/limits/rate-limits.js';
import { silentLogger, uniqueRedisPrefix, waitFor } from '../support/backends.js';
import { externalBackends } from '../support/env.js';
import { captureLogs, type CapturedLogs } from '../support/logs.js';
import { freePort, PrivateRedis, redisServer } from '../support/private-redis.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

// With CI=true and no TEST_REDIS_URL this throws while the file loads, so the run fails instead of skipping.
const redisUrl = externalBackends()?.redisUrl;
// Where Redis is expected, a missing redis-server binary is a failure, not a skip.
const required = redisUrl !== undefined;

const unlimited: LimitSettings = { requestsPerMinute: 0, tokensPerMinute: 0, concurrentCalls: 0 };
const limits = (settings: Partial<LimitSettings>): LimitSettings => ({ ...unlimited, ...settings });

const opened: RateLimits[] = [];
const prefixesUsed: string[] = [];

async function openLimits(
  url: string | undefined,
  options: { keyPrefix?: string; callLeaseMs?: number; logger?: Logger; commandTimeoutMs?: number } = {},
): Promise<RateLimits> {
  const keyPrefix = options.keyPrefix ?? uniqueRedisPrefix();
  prefixesUsed.push(keyPrefix);
  const rateLimits = await RateLimits.open({
    redisUrl: url,
    commandTimeoutMs: options.commandTimeoutMs ?? 1000,
    logger: options.logger ?? silentLogger,
    keyPrefix,
    callLeaseMs: options.callLeaseMs ?? 60_000,
  });
  opened.push(rateLimits);
  return rateLimits;
}

afterAll(async () => {
  for (const rateLimits of opened) await rateLimits.close();
  if (redisUrl === undefined) return;
  const raw = new Redis(redisUrl);
  try {
    for (const prefix of prefixesUsed) {
      const keys = await raw.keys(`${prefix}*`);
      if (keys.length > 0) await raw.del(...keys);
    }
  } finally {
    raw.disconnect();
  }
});

/** The refusal `attempt` ended with, checked for what every refusal must carry. */
async function refusal(attempt: Promise<unknown>): Promise<ExaiError> {
  const error = await attempt.then(
    () => undefined,
    (rejection: unknown) => rejection,
  );
  expect(error, 'the call should have been refused').toBeInstanceOf(ExaiError);
  const refused = error as ExaiError;
  expect(refused.code).toBe('rate_limited');
  expect(refused.httpStatus).toBe(429);
  const retryAfter = refused.details?.retry_after_s;
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter as number).toBeGreaterThanOrEqual(1);
  expect(retryAfter as number).toBeLessThanOrEqual(60);
  return refused;
}

/** Admits every call, or says which one was refused. */
async function admitAll(rateLimits: RateLimits, subject: string, settings: LimitSettings, count: number): Promise<CallPermit[]> {
  const permits: CallPermit[] = [];
  for (let call = 0; call < count; call += 1) permits.push(await rateLimits.admit(subject, settings));
  return permits;
}

/** Fails, rather than waits on, a promise that does not settle in time: a hang guard, not a measurement. */
function settlesWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

const outageWarnings = (logs: CapturedLogs) => logs.lines().filter((line) => line.level === 40 && String(line.msg).startsWith('Redis unavailable'));
const backLines = (logs: CapturedLogs) => logs.lines().filter((line) => line.level === 30 && String(line.msg).startsWith('Redis is back'));

const backends: { name: 'memory' | 'redis'; url: string | undefined }[] = [
  { name: 'memory', url: undefined },
  ...(redisUrl === undefined ? [] : [{ name: 'redis' as const, url: redisUrl }]),
];

describe.each(backends)('rate limits on $name', ({ name, url }) => {
  it('reports its backend', async () => {
    expect((await openLimits(url)).backend).toBe(name);
  });

  it('admits requestsPerMinute calls a minute, then refuses and says when to retry', async () => {
    const rateLimits = await openLimits(url);
    const settings = limits({ requestsPerMinute: 5 });
    await admitAll(rateLimits, 'key-a', settings, 5);
    const refused = await refusal(rateLimits.admit('key-a', settings));
    expect(refused.message).toMatch(/^Rate limit reached: 5 requests per minute for this key\. Retry after \d+ s\.$/);
    // The window started moments ago, so most of the minute is left.
    expect(refused.details?.retry_after_s as number).toBeGreaterThanOrEqual(50);
    expect(refused.message).toContain(`Retry after ${refused.details?.retry_after_s as number} s.`);
    expect(refused.message).not.toContain('key-a');
    // Another subject has its own count.
    await admitAll(rateLimits, 'key-b', settings, 5);
  });

  it('lets concurrentCalls calls run at once; a release frees one slot, however often it is called', async () => {
    const rateLimits = await openLimits(url);
    const settings = limits({ concurrentCalls: 2 });
    const [first, second] = await admitAll(rateLimits, 'key', settings, 2);
    const refused = await refusal(rateLimits.admit('key', settings));
    expect(refused.message).toBe('Too many calls in flight for this key (limit 2); wait for one to finish.');
    await first!.release();
    await first!.release();
    const third = await rateLimits.admit('key', settings);
    await refusal(rateLimits.admit('key', settings));
    await second!.release();
    await third.release();
    await admitAll(rateLimits, 'key', settings, 2);
  });

  it('counts no request for a call refused for concurrency, and gives back the slot of one refused for the rate', async () => {
    const rateLimits = await openLimits(url);
    const settings = limits({ requestsPerMinute: 2, concurrentCalls: 1 });
    const running = await rateLimits.admit('key', settings);
    for (let attempt = 0; attempt < 3; attempt += 1) await refusal(rateLimits.admit('key', settings));
    await running.release();
    // Only one request was counted so far.
    await (await rateLimits.admit('key', settings)).release();
    const refused = await refusal(rateLimits.admit('key', settings));
    expect(refused.message).toMatch(/^Rate limit reached: 2 requests per minute/);
    // That refusal took the slot first and must have given it back.
    await rateLimits.admit('key', limits({ concurrentCalls: 1 }));
  });

  it('refuses once the token budget is spent, charging the call that crossed it in full', async () => {
    const rateLimits = await openLimits(url);
    const settings = limits({ tokensPerMinute: 100 });
    const first = await rateLimits.admit('key', settings);
    await first.chargeTokens(60);
    await first.release();
    // 60 of 100 spent: the next call may start, and overshoots.
    const second = await rateLimits.admit('key', settings);
    await second.chargeTokens(90.2);
    await second.release();
    const refused = await refusal(rateLimits.admit('key', settings));
    expect(refused.message).toMatch(/^Token budget reached: 100 model tokens per minute for this key\. Retry after \d+ s\.$/);
    expect(refused.details?.retry_after_s as number).toBeGreaterThanOrEqual(50);
    // Nothing to charge is no charge, and a subject without a budget is never refused for tokens.
    const other = await rateLimits.admit('other', settings);
    await other.chargeTokens(0);
    await other.chargeTokens(Number.NaN);
    await other.chargeTokens(99);
    await rateLimits.admit('other', settings);
    const free = await rateLimits.admit('key', unlimited);
    await free.chargeTokens(1_000_000);
  });

  it('refuses a call for tokens without taking its slot or counting it as a request', async () => {
    const rateLimits = await openLimits(url);
    const settings = limits({ tokensPerMinute: 10, requestsPerMinute: 2, concurrentCalls: 1 });
    const permit = await rateLimits.admit('key', settings);
    await permit.chargeTokens(10);
    await permit.release();
    for (let attempt = 0; attempt < 3; attempt += 1) await refusal(rateLimits.admit('key', settings));
    // One request counted, the slot free.
    await rateLimits.admit('key', limits({ requestsPerMinute: 2, concurrentCalls: 1 }));
  });

  it('lets a lease that is never released run out after callLeaseMs', async () => {
    const rateLimits = await openLimits(url, { callLeaseMs: 300 });
    const settings = limits({ concurrentCalls: 1 });
    await rateLimits.admit('key', settings); // leaked: never released
    await refusal(rateLimits.admit('key', settings));
    let admitted: CallPermit | undefined;
    await waitFor(
      async () => {
        admitted = await rateLimits.admit('key', settings).catch(() => undefined);
        return admitted !== undefined;
      },
      10_000,
      'the leaked lease to run out',
    );
    await admitted!.release();
  });

  it('limits calls in flight per provider', async () => {
    const rateLimits = await openLimits(url);
    const first = await rateLimits.admitProvider('kimi', 2);
    await rateLimits.admitProvider('kimi', 2);
    const refused = await refusal(rateLimits.admitProvider('kimi', 2));
    expect(refused.message).toMatch(/^Too many calls in flight to kimi across all exai instances \(limit 2\)/);
    await rateLimits.admitProvider('glm', 2); // another provider has its own slots
    await first.chargeTokens(100); // a provider permit has no budget to charge
    await first.release();
    await rateLimits.admitProvider('kimi', 2);
    // A provider slot is not a subject's slot of the same name.
    await rateLimits.admit('kimi', limits({ concurrentCalls: 1 }));
    // 0 is unlimited.
    await Promise.all(Array.from({ length: 10 }, () => rateLimits.admitProvider('kimi', 0)));
  });

  it('locks a source out from the Nth authentication failure in a minute', async () => {
    const rateLimits = await openLimits(url);
    expect(await rateLimits.authLockedOut('10.0.0.1', 3)).toEqual({ limited: false, retryAfterS: 0, count: 0 });
    expect(await rateLimits.noteAuthFailure('10.0.0.1', 3)).toEqual({ limited: false, retryAfterS: 0, count: 1 });
    expect(await rateLimits.noteAuthFailure('10.0.0.1', 3)).toEqual({ limited: false, retryAfterS: 0, count: 2 });
    // Checking counts nothing.
    for (let check = 0; check < 5; check += 1) expect((await rateLimits.authLockedOut('10.0.0.1', 3)).limited).toBe(false);
    const third = await rateLimits.noteAuthFailure('10.0.0.1', 3);
    expect(third.limited).toBe(true);
    expect(third.count).toBe(3);
    expect(third.retryAfterS).toBeGreaterThanOrEqual(50);
    expect(third.retryAfterS).toBeLessThanOrEqual(60);
    const locked = await rateLimits.authLockedOut('10.0.0.1', 3);
    expect(locked.limited).toBe(true);
    expect(locked.retryAfterS).toBeGreaterThanOrEqual(1);
    expect(locked.retryAfterS).toBeLessThanOrEqual(60);
    expect((await rateLimits.noteAuthFailure('10.0.0.1', 3)).limited).toBe(true);
    // Another address is not locked out; 0 means no lockout.
    expect(await rateLimits.authLockedOut('10.0.0.2', 3)).toEqual({ limited: false, retryAfterS: 0, count: 0 });
    expect(await rateLimits.noteAuthFailure('10.0.0.1', 0)).toEqual({ limited: false, retryAfterS: 0, count: 0 });
    expect(await rateLimits.authLockedOut('10.0.0.1', 0)).toEqual({ limited: false, retryAfterS: 0, count: 0 });
  });

  it('applies no limit that is 0', async () => {
    const rateLimits = await openLimits(url);
    const permits = await Promise.all(Array.from({ length: 50 }, () => rateLimits.admit('key', unlimited)));
    for (const permit of permits) {
      await permit.chargeTokens(1000);
      await permit.release();
    }
  });
});

describe.runIf(redisUrl !== undefined)('rate limits shared through Redis', () => {
  /** Two instances with their own connections and the same key prefix, as two exai processes. */
  async function twoInstances(options: { callLeaseMs?: number } = {}): Promise<[RateLimits, RateLimits]> {
    const keyPrefix = uniqueRedisPrefix();
    return [await openLimits(redisUrl, { ...options, keyPrefix }), await openLimits(redisUrl, { ...options, keyPrefix })];
  }

  it('admits exactly requestsPerMinute of 20 concurrent calls made through two instances', async () => {
    const [a, b] = await twoInstances();
    const settings = limits({ requestsPerMinute: 5 });
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, call) => (call % 2 === 0 ? a : b).admit('key', settings)));
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(5);
    for (const outcome of outcomes.filter((each) => each.status === 'rejected')) {
      const reason = (outcome as PromiseRejectedResult).reason as ExaiError;
      expect(reason.code).toBe('rate_limited');
      expect(reason.message).toMatch(/^Rate limit reached: 5 requests per minute/);
      expect(reason.details?.retry_after_s as number).toBeGreaterThanOrEqual(50);
      expect(reason.details?.retry_after_s as number).toBeLessThanOrEqual(60);
    }
    await refusal(a.admit('key', settings));
    await refusal(b.admit('key', settings));
  });

  it('admits exactly concurrentCalls of 20 concurrent calls made through two instances', async () => {
    const [a, b] = await twoInstances();
    const settings = limits({ concurrentCalls: 3 });
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, call) => (call % 2 === 0 ? a : b).admit('key', settings)));
    const admitted = outcomes.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
    expect(admitted).toHaveLength(3);
    // A slot released on one instance is free on the other.
    await admitted[0]!.release();
    const next = await b.admit('key', settings);
    await refusal(a.admit('key', settings));
    await refusal(b.admit('key', settings));
    for (const permit of [...admitted, next]) await permit.release();
    await admitAll(a, 'key', settings, 3);
  });

  it('limits a provider across instances', async () => {
    const [a, b] = await twoInstances();
    const onA = await a.admitProvider('glm', 2);
    await b.admitProvider('glm', 2);
    await refusal(a.admitProvider('glm', 2));
    await refusal(b.admitProvider('glm', 2));
    await onA.release();
    await b.admitProvider('glm', 2);
  });

  it('spends one token budget across instances', async () => {
    const [a, b] = await twoInstances();
    const settings = limits({ tokensPerMinute: 500 });
    const permit = await a.admit('key', settings);
    await permit.chargeTokens(700);
    await permit.release();
    const refused = await refusal(b.admit('key', settings));
    expect(refused.message).toMatch(/^Token budget reached: 500 model tokens per minute/);
    await refusal(a.admit('key', settings));
  });

  it('counts authentication failures across instances', async () => {
    const [a, b] = await twoInstances();
    await a.noteAuthFailure('192.0.2.7', 2);
    expect((await b.authLockedOut('192.0.2.7', 2)).limited).toBe(false);
    expect((await b.noteAuthFailure('192.0.2.7', 2)).limited).toBe(true);
    expect((await a.authLockedOut('192.0.2.7', 2)).limited).toBe(true);
  });

  it('frees the slots of an instance that went away mid-call once their leases run out', async () => {
    const [crashed, survivor] = await twoInstances({ callLeaseMs: 400 });
    const settings = limits({ concurrentCalls: 1 });
    await crashed.admit('key', settings);
    await crashed.admitProvider('kimi', 1);
    await crashed.close(); // gone without releasing anything
    await refusal(survivor.admit('key', settings));
    await refusal(survivor.admitProvider('kimi', 1));
    await waitFor(async () => (await survivor.admit('key', settings).catch(() => undefined)) !== undefined, 10_000, 'the leaked call lease to run out');
    await waitFor(async () => (await survivor.admitProvider('kimi', 1).catch(() => undefined)) !== undefined, 10_000, 'the leaked provider lease to run out');
  });

  it('limits in process for a command Redis refuses, keeping the connection', async () => {
    const logs = captureLogs();
    const keyPrefix = uniqueRedisPrefix();
    const rateLimits = await openLimits(redisUrl, { keyPrefix, logger: logs.logger });
    const raw = new Redis(redisUrl!);
    try {
      // A key of the wrong type makes the lease script fail inside Redis (WRONGTYPE).
      await raw.set(`${keyPrefix}calls:key`, 'not a sorted set');
      const settings = limits({ concurrentCalls: 1, requestsPerMinute: 10 });
      const permit = await rateLimits.admit('key', settings);
      await refusal(rateLimits.admit('key', settings)); // the in-process slot is taken
      expect(await raw.get(`${keyPrefix}req:key`)).toBe('1'); // the rest still counts in Redis
      await permit.release();
      await raw.del(`${keyPrefix}calls:key`);
      await (await rateLimits.admit('key', settings)).release();
      expect(await raw.get(`${keyPrefix}req:key`)).toBe('2');
      expect(await raw.exists(`${keyPrefix}calls:key`)).toBe(0); // taken and released in Redis again
      // Not an outage: one warning for the refusals, none about Redis being away.
      expect(logs.lines().filter((line) => line.msg === 'Redis refused a rate-limit command: limiting that call in process')).toHaveLength(1);
      expect(outageWarnings(logs)).toHaveLength(0);
    } finally {
      raw.disconnect();
    }
  });

  it('keeps every key under its prefix, each with an expiry', async () => {
    const keyPrefix = uniqueRedisPrefix();
    const rateLimits = await openLimits(redisUrl, { keyPrefix });
    const permit = await rateLimits.admit('key', { requestsPerMinute: 10, tokensPerMinute: 10, concurrentCalls: 1 });
    await permit.chargeTokens(5);
    await rateLimits.admitProvider('kimi', 1);
    await rateLimits.noteAuthFailure('198.51.100.1', 5);
    const raw = new Redis(redisUrl!);
    try {
      const keys = (await raw.keys(`${keyPrefix}*`)).sort();
      expect(keys).toEqual(
        [`${keyPrefix}authfail:198.51.100.1`, `${keyPrefix}calls:key`, `${keyPrefix}provider:kimi`, `${keyPrefix}req:key`, `${keyPrefix}tok:key`].sort(),
      );
      for (const key of keys) expect(await raw.pttl(key)).toBeGreaterThan(0);
      // Releasing the only slot leaves nothing behind (Redis drops an empty sorted set).
      await permit.release();
      expect(await raw.exists(`${keyPrefix}calls:key`)).toBe(0);
    } finally {
      raw.disconnect();
    }
  });
});

describe.skipIf(redisServer === undefined && !required)('rate limits while Redis is away', () => {
  const servers: PrivateRedis[] = [];

  async function privateRedis(password?: string): Promise<PrivateRedis> {
    const server = new PrivateRedis(await freePort(), password);
    servers.push(server);
    return server;
  }

  afterAll(async () => {
    for (const server of servers) await server.destroy();
  });

  it('has redis-server to run these tests with', () => {
    expect(redisServer, 'redis-server must be installed where TEST_REDIS_URL is set').toBeDefined();
  });

  it('limits in process when Redis cannot be reached at all, and warns once', async () => {
    const logs = captureLogs();
    const url = `redis://:hunter2@127.0.0.1:${await freePort()}`;
    const rateLimits = await settlesWithin(openLimits(url, { logger: logs.logger, commandTimeoutMs: 300 }), 5000, 'open()');
    expect(rateLimits.backend).toBe('redis');
    const settings = { requestsPerMinute: 3, tokensPerMinute: 100, concurrentCalls: 2 };
    const permits = await settlesWithin(admitAll(rateLimits, 'key', settings, 2), 5000, 'admits');
    await refusal(rateLimits.admit('key', settings)); // both slots taken
    await permits[0]!.chargeTokens(150);
    for (const permit of permits) await permit.release();
    await refusal(rateLimits.admit('key', settings)); // token budget spent
    await rateLimits.admitProvider('kimi', 1);
    await refusal(rateLimits.admitProvider('kimi', 1));
    await rateLimits.noteAuthFailure('10.1.1.1', 1);
    expect((await rateLimits.authLockedOut('10.1.1.1', 1)).limited).toBe(true);
    await waitFor(() => outageWarnings(logs).length > 0, 5000, 'the outage warning');
    // Let the client fail a few reconnection attempts too: still one warning.
    await new Promise((resolve) => setTimeout(resolve, 400));
    await admitAll(rateLimits, 'other', limits({ requestsPerMinute: 3 }), 3);
    await refusal(rateLimits.admit('other', limits({ requestsPerMinute: 3 })));
    expect(outageWarnings(logs)).toHaveLength(1);
    expect(outageWarnings(logs)[0]!.redis).toBe(`redis://127.0.0.1:${new URL(url).port}`);
    expect(JSON.stringify(logs.lines())).not.toContain('hunter2');
  });

  it('keeps admitting calls through an outage and shares limits again when Redis is back', async () => {
    const server = await privateRedis();
    await server.start();
    const logs = captureLogs();
    const keyPrefix = uniqueRedisPrefix();
    const rateLimits = await openLimits(server.url, { logger: logs.logger, commandTimeoutMs: 300, keyPrefix });
    const settings = limits({ requestsPerMinute: 2, concurrentCalls: 1 });
    const beforeOutage = await rateLimits.admit('key', settings);
    expect(await server.command('EXISTS', `${keyPrefix}req:key`)).toBe(1);
    expect(logs.lines()).toHaveLength(0);

    await server.kill();
    await waitFor(() => outageWarnings(logs).length === 1, 5000, 'the outage warning');
    // A slot taken in Redis can be released while it is away (it runs out there by itself).
    await settlesWithin(beforeOutage.release(), 5000, 'a release during the outage');
    // In process the counts start afresh, and still hold.
    const duringOutage = await settlesWithin(rateLimits.admit('key', settings), 5000, 'an admit during the outage');
    await refusal(rateLimits.admit('key', settings));
    await duringOutage.release();
    await rateLimits.admit('key', settings).then((permit) => permit.release());
    await refusal(rateLimits.admit('key', settings));
    expect(outageWarnings(logs)).toHaveLength(1);

    await server.start();
    await waitFor(() => backLines(logs).length === 1, 10_000, 'the limits to find Redis again');
    // Counted in Redis again: the restarted server (no persistence) starts from an empty count.
    const afterOutage = await rateLimits.admit('key', settings);
    expect(await server.command('GET', `${keyPrefix}req:key`)).toBe('1');
    await refusal(rateLimits.admit('key', settings));
    await afterOutage.release();
    expect(outageWarnings(logs)).toHaveLength(1);
  });

  it('does not hang on a Redis that stops answering: each admit settles within the command timeouts', async () => {
    const server = await privateRedis();
    await server.start();
    const proxy = await startTcpProxy('127.0.0.1', server.port);
    try {
      const logs = captureLogs();
      const commandTimeoutMs = 300;
      const keyPrefix = uniqueRedisPrefix();
      const rateLimits = await openLimits(`redis://127.0.0.1:${proxy.port}`, { logger: logs.logger, commandTimeoutMs, keyPrefix });
      const settings = { requestsPerMinute: 2, tokensPerMinute: 100, concurrentCalls: 5 };
      await (await rateLimits.admit('key', settings)).release();

      proxy.silence(true);
      // At worst every Redis step of one admit waits for its command timeout.
      const bound = 3 * commandTimeoutMs + 2000;
      const permit = await settlesWithin(rateLimits.admit('key', settings), bound, 'an admit while Redis is silent');
      await settlesWithin(permit.chargeTokens(10), bound, 'a token charge while Redis is silent');
      await settlesWithin(permit.release(), bound, 'a release while Redis is silent');
      // In process the request count started afresh: two more, then refused.
      await settlesWithin(rateLimits.admit('key', settings), bound, 'a second admit while Redis is silent');
      await refusal(settlesWithin(rateLimits.admit('key', settings), bound, 'a third admit while Redis is silent'));
      expect((await settlesWithin(rateLimits.authLockedOut('10.2.2.2', 1), bound, 'a lockout check while Redis is silent')).limited).toBe(false);
      expect(outageWarnings(logs)).toHaveLength(1);

      // Once Redis answers again the client reconnects and the count in Redis is used again.
      proxy.silence(false);
      await waitFor(() => backLines(logs).length === 1, 10_000, 'the limits to find Redis again');
      await rateLimits.admit('key', settings);
      expect(await server.command('GET', `${keyPrefix}req:key`)).toBe('2');
      await refusal(rateLimits.admit('key', settings));
      expect(outageWarnings(logs)).toHaveLength(1);
    } finally {
      proxy.silence(false);
      await proxy.close();
    }
  });
});
