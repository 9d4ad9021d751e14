/** Leases in this process: the backend without Redis, and the fallback while Redis is away. */
import { onceOnly, type Lease, type LeaseSets } from './leases.js';

export class MemoryLeases implements LeaseSets {
  /** Set name → lease number → when it runs out (ms since the epoch). */
  private readonly sets = new Map<string, Map<number, number>>();
  private nextId = 0;

  constructor(private readonly leaseMs: number) {}

  async acquire(set: string, limit: number): Promise<Lease | undefined> {
    const now = Date.now();
    const leases = this.sets.get(set) ?? new Map<number, number>();
    for (const [id, expiresAt] of leases) if (expiresAt <= now) leases.delete(id);
    if (leases.size >= limit) return undefined;
    const id = (this.nextId += 1);
    leases.set(id, now + this.leaseMs);
    this.sets.set(set, leases);
    return onceOnly(async () => {
      leases.delete(id);
      // Forget idle sets so that subjects seen once do not accumulate; a newer map may have replaced this one.
      if (leases.size === 0 && this.sets.get(set) === leases) this.sets.delete(set);
    });
  }
}
