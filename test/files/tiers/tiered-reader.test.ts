/**
 * The three read tiers together over a real LocalObjectStore: where each read
 * comes from, the cached tiers serving objects the primary store no longer
 * has, ranges from every tier, caches left clean by readers that stop early
 * or fills that fail, and a large object streamed without being held whole.
 */
import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { LocalObjectStore } from '../../../src/files/storage/local-object-store.js';
import type { ByteRange } from '../../../src/files/storage/object-store.js';
import { DiskTier } from '../../../src/files/tiers/disk-tier.js';
import { MemoryTier } from '../../../src/files/tiers/memory-tier.js';
import { TieredReader } from '../../../src/files/tiers/tiered-reader.js';
import { suiteCleanups } from '../../support/cleanups.js';
import { body, bytesOf, refusal } from '../../support/object-bodies.js';
import { cachePath, digestOf, filesUnder, randomObject, tempFolder, type TestObject } from './tier-fixtures.js';

const cleanups = suiteCleanups();
const smallLimit = 64 * 1024;

describe('the tiered reader', () => {
  let primaryFolder: string;
  let primary: LocalObjectStore;
  let memory: MemoryTier;
  let disk: DiskTier;
  let cacheFolder: string;
  let reader: TieredReader;

  beforeEach(async () => {
    primaryFolder = tempFolder(cleanups, 'objects');
    primary = new LocalObjectStore(primaryFolder);
    cacheFolder = tempFolder(cleanups, 'cache');
    memory = new MemoryTier({ maxBytes: 1024 * 1024, maxEntryBytes: smallLimit });
    disk = await DiskTier.open({ directory: cacheFolder, maxBytes: 64 * 1024 * 1024 });
    reader = new TieredReader({ memory, disk, primary });
  });

  async function stored(size: number): Promise<TestObject> {
    const object = randomObject(size);
    await primary.put(body(object.bytes), { maxBytes: size + 1 });
    return object;
  }

  async function readWhole(object: TestObject, range?: { start: number; end?: number }) {
    const { stream, tier } = await reader.open(object.key, object.bytes.length, range);
    const bytes = await bytesOf(stream);
    await reader.idle();
    return { tier, digest: digestOf(bytes) };
  }

  it('reads a small object from the primary store once, then from memory, then from disk once memory is gone', async () => {
    const object = await stored(10_000);
    const whole = digestOf(object.bytes);
    expect(await readWhole(object)).toEqual({ tier: 'primary', digest: whole });
    expect(await readWhole(object)).toEqual({ tier: 'memory', digest: whole });
    expect(disk.has(object.key)).toBe(true);

    await primary.delete(object.key);
    expect(await readWhole(object)).toEqual({ tier: 'memory', digest: whole });
    // A restart: memory is empty, the disk cache is still there and refills memory.
    memory = new MemoryTier({ maxBytes: 1024 * 1024, maxEntryBytes: smallLimit });
    reader = new TieredReader({ memory, disk: await DiskTier.open({ directory: cacheFolder, maxBytes: 64 * 1024 * 1024 }), primary });
    expect(await readWhole(object)).toEqual({ tier: 'disk', digest: whole });
    expect(await readWhole(object)).toEqual({ tier: 'memory', digest: whole });
  });

  it('reads a large object from the primary store once, then from disk, even after the primary store lost it', async () => {
    const object = await stored(1_000_000);
    const whole = digestOf(object.bytes);
    expect(await readWhole(object)).toEqual({ tier: 'primary', digest: whole });
    expect(await readWhole(object)).toEqual({ tier: 'disk', digest: whole });
    await primary.delete(object.key);
    expect(await readWhole(object)).toEqual({ tier: 'disk', digest: whole });
    expect(memory.stats().entries).toBe(0);
  });

  it('serves the same ranges from every tier, and range reads from the primary store fill nothing', async () => {
    const small = await stored(10_000);
    const large = await stored(500_000);
    const ranges = [{ start: 0, end: 0 }, { start: 1_000, end: 1_999 }, { start: 9_990 }, { start: 5_000, end: 9_999 }];
    const expected = (object: TestObject, range: { start: number; end?: number }) =>
      digestOf(object.bytes.subarray(range.start, range.end === undefined ? undefined : range.end + 1));

    for (const range of ranges) {
      for (const object of [small, large]) expect(await readWhole(object, range)).toEqual({ tier: 'primary', digest: expected(object, range) });
    }
    expect(filesUnder(cacheFolder)).toEqual([]);
    expect(memory.stats().entries).toBe(0);

    await readWhole(small);
    await readWhole(large);
    for (const range of ranges) {
      expect(await readWhole(small, range)).toEqual({ tier: 'memory', digest: expected(small, range) });
      expect(await readWhole(large, range)).toEqual({ tier: 'disk', digest: expected(large, range) });
    }
    for (const object of [small, large]) {
      await refusal(reader.open(object.key, object.bytes.length, { start: 10, end: object.bytes.length }), 'invalid_argument');
      await refusal(reader.open(object.key, object.bytes.length, { start: -1 }), 'invalid_argument');
    }
  });

  it('refuses keys that are not object keys, and reports objects no tier has', async () => {
    for (const key of ['sha256/../../etc/passwd', '/etc/passwd', `sha256/${'a'.repeat(63)}`]) {
      await refusal(reader.open(key, 10), 'invalid_argument');
      await refusal(reader.forget(key), 'invalid_argument');
    }
    await refusal(reader.open(randomObject(10).key, 10), 'not_found');
  });

  it('caches nothing for a reader that stops early, and caches the object whole on the next full read', async () => {
    const object = await stored(5_000_000);
    const { stream, tier } = await reader.open(object.key, object.bytes.length);
    expect(tier).toBe('primary');
    let seen = 0;
    for await (const chunk of stream) {
      seen += (chunk as Buffer).length;
      if (seen > 100_000) break;
    }
    expect(stream.destroyed).toBe(true);
    await reader.idle();
    expect(filesUnder(cacheFolder)).toEqual([]);
    expect(disk.stats()).toMatchObject({ entries: 0, bytes: 0 });

    expect(await readWhole(object)).toEqual({ tier: 'primary', digest: digestOf(object.bytes) });
    expect(filesUnder(cacheFolder)).toEqual([cachePath(object.key)]);
  });

  it('caches nothing from a primary read that fails midway, and the caller sees the failure', async () => {
    const object = await stored(2_000_000);
    reader = new TieredReader({ memory, disk, primary: new DroppingStore(primaryFolder, 1_000_000) });
    const { stream } = await reader.open(object.key, object.bytes.length);
    await expect(bytesOf(stream)).rejects.toThrow('the storage connection dropped');
    await reader.idle();
    expect(filesUnder(cacheFolder)).toEqual([]);
    expect(disk.stats()).toMatchObject({ entries: 0, bytes: 0 });
  });

  it('still gives the caller every byte when the disk fill fails', async () => {
    // tmp as a file: the fill cannot create its temporary file.
    rmSync(path.join(cacheFolder, 'tmp'), { recursive: true, force: true });
    writeFileSync(path.join(cacheFolder, 'tmp'), 'in the way');
    const small = await stored(10_000);
    const large = await stored(1_000_000);
    expect(await readWhole(large)).toEqual({ tier: 'primary', digest: digestOf(large.bytes) });
    expect(await readWhole(small)).toEqual({ tier: 'primary', digest: digestOf(small.bytes) });
    expect(disk.stats().entries).toBe(0);
    // Memory does not depend on the disk.
    expect(await readWhole(small)).toEqual({ tier: 'memory', digest: digestOf(small.bytes) });

    // A size that does not match the object: the caller still gets the bytes; no tier keeps them.
    rmSync(path.join(cacheFolder, 'tmp'), { force: true });
    const mislabelled = await stored(20_000);
    const { stream } = await reader.open(mislabelled.key, 20_001);
    expect(digestOf(await bytesOf(stream))).toEqual(digestOf(mislabelled.bytes));
    await reader.idle();
    expect(disk.has(mislabelled.key)).toBe(false);
    expect(memory.get(mislabelled.key)).toBeUndefined();
  });

  it('streams a 20 MB object through without holding it whole, and caches it on disk only', async () => {
    const object = await stored(20 * 1024 * 1024);
    const { stream, tier } = await reader.open(object.key, object.bytes.length);
    expect(tier).toBe('primary');
    const hash = createHash('sha256');
    let size = 0;
    let mostBuffered = 0;
    for await (const chunk of stream) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
      mostBuffered = Math.max(mostBuffered, buffered(stream));
    }
    expect({ size, sha256: hash.digest('hex') }).toEqual(digestOf(object.bytes));
    expect(mostBuffered).toBeLessThan(1024 * 1024);
    await reader.idle();
    expect(memory.stats()).toMatchObject({ entries: 0, bytes: 0 });
    expect(disk.stats()).toMatchObject({ entries: 1, bytes: object.bytes.length });
    expect(await readWhole(object)).toEqual({ tier: 'disk', digest: digestOf(object.bytes) });
  });

  it('fills once when two first reads race, and both readers get every byte', async () => {
    const object = await stored(3_000_000);
    const reads = await Promise.all([readWhole(object), readWhole(object)]);
    expect(reads.map((read) => read.digest)).toEqual([digestOf(object.bytes), digestOf(object.bytes)]);
    expect(filesUnder(cacheFolder)).toEqual([cachePath(object.key)]);
  });

  it('forgets a purged object in every tier, including a fill still in progress', async () => {
    const small = await stored(10_000);
    await readWhole(small);
    await reader.forget(small.key);
    await primary.delete(small.key);
    await refusal(reader.open(small.key, small.bytes.length), 'not_found');

    const large = await stored(5_000_000);
    const { stream } = await reader.open(large.key, large.bytes.length);
    const reading = bytesOf(stream);
    await reader.forget(large.key);
    expect(digestOf(await reading)).toEqual(digestOf(large.bytes));
    await reader.idle();
    expect(filesUnder(cacheFolder)).toEqual([]);
    expect(await readWhole(large)).toMatchObject({ tier: 'primary' });

    // Purged while the read was still opening: it is served, and no tier keeps it.
    for (const object of [await stored(10_000), await stored(1_000_000)]) {
      const opening = reader.open(object.key, object.bytes.length);
      await reader.forget(object.key);
      expect(digestOf(await bytesOf((await opening).stream))).toEqual(digestOf(object.bytes));
      await reader.idle();
      expect(disk.has(object.key)).toBe(false);
      expect(memory.get(object.key)).toBeUndefined();
    }
  });

  it('works without a disk tier: small objects in memory, large ones straight from the primary store', async () => {
    reader = new TieredReader({ memory, disk: undefined, primary });
    const small = await stored(10_000);
    const large = await stored(200_000);
    expect(await readWhole(small)).toMatchObject({ tier: 'primary' });
    expect(await readWhole(small)).toEqual({ tier: 'memory', digest: digestOf(small.bytes) });
    expect(await readWhole(large)).toMatchObject({ tier: 'primary' });
    expect(await readWhole(large)).toEqual({ tier: 'primary', digest: digestOf(large.bytes) });
  });
});

/** Bytes a stream holds in its buffers: what a reader that buffered the whole object would show. */
function buffered(stream: Readable): number {
  return stream.readableLength + ((stream as Readable & { writableLength?: number }).writableLength ?? 0);
}

/** A real local store whose reads fail after `failAfter` bytes, as a dropped connection to S3 would. */
class DroppingStore extends LocalObjectStore {
  constructor(
    root: string,
    private readonly failAfter: number,
  ) {
    super(root);
  }

  override async get(key: string, range?: ByteRange): Promise<Readable> {
    const source = await super.get(key, range);
    let passed = 0;
    const dropping = new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        passed += chunk.length;
        callback(passed > this.failAfter ? new Error('the storage connection dropped') : null, chunk);
      },
    });
    source.on('error', (error) => dropping.destroy(error));
    dropping.on('close', () => source.destroy());
    return source.pipe(dropping);
  }
}
