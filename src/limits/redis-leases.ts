/**
 * Leases shared by every instance on one Redis: a sorted set per slot set, lease ids scored by when
 * they run out. Taking a slot is one Lua script (drop the expired, count, add), so instances cannot
 * both take the last slot; expiry uses Redis's clock, so instances' clocks need not agree.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { onceOnly, type Lease, type LeaseSets } from './leases.js';
import type { MemoryLeases } from './memory-leases.js';
import type { RedisLink } from './redis-link.js';

// KEYS[1] the set; ARGV: limit, lease ms, lease id. Returns 1 when the lease was taken, 0 when full.
// The key itself expires when its longest-lived lease would, so abandoned sets do not linger.
const acquireScript = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local leaseMs = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + leaseMs, ARGV[3])
if redis.call('PTTL', KEYS[1]) < leaseMs then redis.call('PEXPIRE', KEYS[1], leaseMs) end
return 1
`;

type LeaseCommands = {
  exaiAcquireLease(key: string, limit: number, leaseMs: number, id: string): Promise<number>;
};

export class RedisLeases implements LeaseSets {
  private readonly client: Redis & LeaseCommands;

  constructor(
    private readonly link: RedisLink,
    private readonly keyPrefix: string,
    private readonly leaseMs: number,
    /** Where leases go while Redis cannot answer: each instance then limits its own calls. */
    private readonly fallback: MemoryLeases,
  ) {
    this.client = link.client as Redis & LeaseCommands;
    this.client.defineCommand('exaiAcquireLease', { numberOfKeys: 1, lua: acquireScript });
  }

  acquire(set: string, limit: number): Promise<Lease | undefined> {
    const key = `${this.keyPrefix}${set}`;
    return this.link.attempt(async () => {
      const id = randomUUID();
      if ((await this.client.exaiAcquireLease(key, limit, this.leaseMs, id)) !== 1) return undefined;
      // A release that cannot reach Redis is dropped: the lease then runs out by itself.
      return onceOnly(() => this.link.attempt(async () => void (await this.client.zrem(key, id)), async () => undefined));
    }, () => this.fallback.acquire(set, limit));
  }
}
