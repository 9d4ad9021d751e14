/**
 * The disk tier on a real folder: whole and ranged reads, least-recently-read
 * eviction that keeps the folder within its bound, the index rebuilt from the
 * files (and crash leftovers removed) on reopen, and fills that fail or do not
 * fit leaving nothing behind.
 */
import { existsSync, mkdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskTier } from '../../../src/files/tiers/disk-tier.js';
import { suiteCleanups } from '../../support/cleanups.js';
import { body, bytesOf, refusal } from '../../support/object-bodies.js';
import { bytesUnder, cachePath, digestOf, filesUnder, randomObject, tempFolder, type TestObject } from './tier-fixtures.js';

const cleanups = suiteCleanups();

async function filled(tier: DiskTier, ...objects: TestObject[]): Promise<void> {
  for (const object of objects) await tier.fill(object.key, body(object.bytes, { chunk: 7_000 }), object.bytes.length);
}

async function read(tier: DiskTier, object: TestObject): Promise<Buffer | undefined> {
  const stream = await tier.open(object.key);
  return stream === undefined ? undefined : bytesOf(stream);
}

describe('the disk tier', () => {
  it('serves what it was filled with, whole or by range, and misses what it was not', async () => {
    const directory = tempFolder(cleanups, 'disk-tier');
    const tier = await DiskTier.open({ directory, maxBytes: 1_000_000 });
    const object = randomObject(100_000);
    await filled(tier, object);
    expect(filesUnder(directory)).toEqual([cachePath(object.key)]);
    expect(digestOf(await read(tier, object))).toEqual(digestOf(object.bytes));
    expect(digestOf(await bytesOf((await tier.open(object.key, { start: 1_000, end: 1_999 }))!))).toEqual(digestOf(object.bytes.subarray(1_000, 2_000)));
    expect(digestOf(await bytesOf((await tier.open(object.key, { start: 99_990 }))!))).toEqual(digestOf(object.bytes.subarray(99_990)));
    await refusal(tier.open(object.key, { start: 10, end: 100_000 }), 'invalid_argument');
    expect(await read(tier, randomObject(10))).toBeUndefined();
    expect(tier.stats()).toEqual({ entries: 1, bytes: 100_000, hits: 3, misses: 1 });
    for (const key of ['sha256/../../etc/passwd', `sha256/${'A'.repeat(64)}`, 'tmp']) {
      await refusal(tier.open(key), 'invalid_argument');
      await refusal(tier.fill(key, body(Buffer.from('x')), 1), 'invalid_argument');
    }
  });

  it('evicts the least recently read files, keeping the folder within maxBytes', async () => {
    const directory = tempFolder(cleanups, 'disk-tier');
    const tier = await DiskTier.open({ directory, maxBytes: 300_000 });
    const [a, b, c, d] = [100_000, 100_000, 100_000, 100_000].map((size) => randomObject(size));
    await filled(tier, a!, b!, c!);
    expect(digestOf(await read(tier, a!))).toEqual(digestOf(a!.bytes));
    await filled(tier, d!);
    expect(tier.has(b!.key)).toBe(false);
    expect(existsSync(path.join(directory, cachePath(b!.key)))).toBe(false);
    for (const kept of [a!, c!, d!]) expect(digestOf(await read(tier, kept))).toEqual(digestOf(kept.bytes));
    expect(tier.stats()).toMatchObject({ entries: 3, bytes: 300_000 });
    expect(bytesUnder(directory)).toBeLessThanOrEqual(300_000);

    // Larger than the whole tier: not cached, nothing evicted for it, and its body is released.
    const huge = randomObject(300_001);
    const source = body(huge.bytes);
    await tier.fill(huge.key, source, huge.bytes.length);
    expect(source.destroyed).toBe(true);
    expect(tier.has(huge.key)).toBe(false);
    expect(tier.stats()).toMatchObject({ entries: 3, bytes: 300_000 });
  });

  it('keeps serving a file that eviction removes while it is being read', async () => {
    const directory = tempFolder(cleanups, 'disk-tier');
    const tier = await DiskTier.open({ directory, maxBytes: 200_000 });
    const [a, b, c] = [100_000, 100_000, 100_000].map((size) => randomObject(size));
    await filled(tier, a!, b!);
    const reading = (await tier.open(a!.key))!;
    await filled(tier, c!);
    await filled(tier, randomObject(100_000));
    expect(tier.has(a!.key)).toBe(false);
    expect(digestOf(await bytesOf(reading))).toEqual(digestOf(a!.bytes));
  });

  it('rebuilds its index from the files on reopen, by recency, and removes what a crash left in tmp', async () => {
    const directory = tempFolder(cleanups, 'disk-tier');
    const first = await DiskTier.open({ directory, maxBytes: 300_000 });
    const [a, b, c, d] = [100_000, 100_000, 100_000, 100_000].map((size) => randomObject(size));
    await filled(first, a!, b!, c!);
    // a oldest, then b, then c: as if filled hours apart.
    [a!, b!, c!].forEach((object, index) => {
      const when = (Date.now() - (3 - index) * 3_600_000) / 1000;
      utimesSync(path.join(directory, cachePath(object.key)), when, when);
    });
    mkdirSync(path.join(directory, 'tmp'), { recursive: true });
    writeFileSync(path.join(directory, 'tmp', 'crashed-fill'), 'half an object');

    const second = await DiskTier.open({ directory, maxBytes: 300_000 });
    expect(second.stats()).toEqual({ entries: 3, bytes: 300_000, hits: 0, misses: 0 });
    expect(filesUnder(path.join(directory, 'tmp'))).toEqual([]);
    // Reading a refreshes its mtime, so after another restart b is the least recently used.
    expect(digestOf(await read(second, a!))).toEqual(digestOf(a!.bytes));
    expect(statSync(path.join(directory, cachePath(a!.key))).mtimeMs).toBeGreaterThan(Date.now() - 60_000);

    const third = await DiskTier.open({ directory, maxBytes: 300_000 });
    await filled(third, d!);
    expect(third.has(b!.key)).toBe(false);
    for (const kept of [a!, c!, d!]) expect(digestOf(await read(third, kept))).toEqual(digestOf(kept.bytes));

    // A smaller bound than the previous run's: the oldest go at once. (Reads a moment apart can
    // share an mtime, so the order is set here rather than by the reads above.)
    [a!, c!].forEach((object, index) => {
      const when = (Date.now() - (2 - index) * 3_600_000) / 1000;
      utimesSync(path.join(directory, cachePath(object.key)), when, when);
    });
    const smaller = await DiskTier.open({ directory, maxBytes: 150_000 });
    expect(smaller.stats()).toMatchObject({ entries: 1, bytes: 100_000 });
    expect(filesUnder(directory)).toEqual([cachePath(d!.key)]);
  });

  it('leaves nothing behind for a stream that fails or bytes that do not match the key', async () => {
    const directory = tempFolder(cleanups, 'disk-tier');
    const tier = await DiskTier.open({ directory, maxBytes: 1_000_000 });
    const object = randomObject(200_000);
    await expect(tier.fill(object.key, body(object.bytes, { chunk: 10_000, failAfter: 100_000 }), object.bytes.length)).rejects.toThrow(
      'the client went away',
    );
    await expect(tier.fill(object.key, body(object.bytes.subarray(1)), object.bytes.length)).rejects.toThrow(/ended after 199999/);
    await expect(tier.fill(object.key, body(randomObject(200_000).bytes), object.bytes.length)).rejects.toThrow(/does not match/);
    await expect(tier.fill(object.key, body(object.bytes), object.bytes.length - 1)).rejects.toThrow(/more than the expected/);
    expect(filesUnder(directory)).toEqual([]);
    expect(tier.stats()).toMatchObject({ entries: 0, bytes: 0 });
    // The room reserved for the failed fills was given back.
    await filled(tier, object);
    expect(digestOf(await read(tier, object))).toEqual(digestOf(object.bytes));
  });

  it('forgets a purged object, file and all, and abandons its fill in progress', async () => {
    const directory = tempFolder(cleanups, 'disk-tier');
    const tier = await DiskTier.open({ directory, maxBytes: 1_000_000 });
    const cached = randomObject(50_000);
    await filled(tier, cached);
    await tier.forget(cached.key);
    expect(await read(tier, cached)).toBeUndefined();

    const slow = randomObject(500_000);
    const filling = tier.fill(slow.key, body(slow.bytes, { chunk: 1_000 }), slow.bytes.length);
    await tier.forget(slow.key);
    await expect(filling).rejects.toThrow();
    expect(tier.has(slow.key)).toBe(false);
    expect(filesUnder(directory)).toEqual([]);
    expect(tier.stats()).toMatchObject({ entries: 0, bytes: 0 });
  });
});
