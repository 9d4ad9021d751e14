/** The memory tier: bounded by total bytes with least-recently-used eviction, and never holding an entry above its cap. */
import { describe, expect, it } from 'vitest';
import { MemoryTier } from '../../../src/files/tiers/memory-tier.js';
import { expectExaiError } from '../../support/assertions.js';
import { randomObject } from './tier-fixtures.js';

describe('the memory tier', () => {
  it('evicts the least recently used entries once the bytes held pass the bound', () => {
    const tier = new MemoryTier({ maxBytes: 1000, maxEntryBytes: 400 });
    const [a, b, c, d] = [300, 300, 300, 300].map((size) => randomObject(size));
    tier.set(a!.key, a!.bytes);
    tier.set(b!.key, b!.bytes);
    tier.set(c!.key, c!.bytes);
    expect(tier.get(a!.key)).toEqual(a!.bytes);
    tier.set(d!.key, d!.bytes);
    expect(tier.get(b!.key)).toBeUndefined();
    for (const kept of [a!, c!, d!]) expect(tier.get(kept.key)).toEqual(kept.bytes);
    expect(tier.stats()).toEqual({ entries: 3, bytes: 900, hits: 4, misses: 1 });
  });

  it('never holds an entry above maxEntryBytes, however much room there is', () => {
    const tier = new MemoryTier({ maxBytes: 10_000, maxEntryBytes: 400 });
    const large = randomObject(401);
    const fits = randomObject(400);
    tier.set(large.key, large.bytes);
    tier.set(fits.key, fits.bytes);
    expect(tier.get(large.key)).toBeUndefined();
    expect(tier.get(fits.key)).toEqual(fits.bytes);
    expect(tier.stats()).toMatchObject({ entries: 1, bytes: 400 });
  });

  it('forgets a purged entry and refuses bounds that are not positive byte counts', async () => {
    const tier = new MemoryTier({ maxBytes: 1000, maxEntryBytes: 400 });
    const object = randomObject(100);
    tier.set(object.key, object.bytes);
    tier.forget(object.key);
    expect(tier.get(object.key)).toBeUndefined();
    expect(tier.stats()).toMatchObject({ entries: 0, bytes: 0 });
    for (const options of [
      { maxBytes: 0, maxEntryBytes: 1 },
      { maxBytes: 10, maxEntryBytes: 1.5 },
    ]) {
      const error = await expectExaiError(Promise.resolve().then(() => new MemoryTier(options)));
      expect(error.code).toBe('invalid_argument');
    }
  });
});
