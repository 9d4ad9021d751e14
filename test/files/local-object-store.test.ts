/**
 * The local object store on a real filesystem: content addressing, one object
 * for the same bytes however many uploads race, nothing left behind by an
 * upload that is too large or whose stream fails, ranges, and keys that
 * cannot reach outside the store.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalObjectStore } from '../../src/files/storage/local-object-store.js';
import { body, bytesOf, refusal } from '../support/object-bodies.js';

function filesUnder(folder: string): string[] {
  if (!existsSync(folder)) return [];
  return readdirSync(folder, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name));
}

describe('the local object store', () => {
  let root: string;
  let store: LocalObjectStore;

  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'exai-objects-'));
    store = new LocalObjectStore(root);
  });

  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('stores bytes under their SHA-256 and gives them back, whole or by range', async () => {
    const bytes = randomBytes(300_000);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const stored = await store.put(body(bytes), { maxBytes: 1_000_000 });
    expect(stored).toEqual({ key: `sha256/${sha256}`, sha256, size: bytes.length, existed: false });
    expect(await bytesOf(await store.get(stored.key))).toEqual(bytes);
    expect(await bytesOf(await store.get(stored.key, { start: 1000, end: 1999 }))).toEqual(bytes.subarray(1000, 2000));
    expect(await bytesOf(await store.get(stored.key, { start: 299_990 }))).toEqual(bytes.subarray(299_990));
    expect(await store.stat(stored.key)).toEqual({ size: bytes.length });
    await refusal(store.get(stored.key, { start: 10, end: 300_000 }), 'invalid_argument');
  });

  it('keeps one object for the same bytes, however many uploads race', async () => {
    const bytes = randomBytes(200_000);
    const results = await Promise.all(Array.from({ length: 8 }, () => store.put(body(bytes, { chunk: 7_000 }), { maxBytes: 1_000_000 })));
    expect(new Set(results.map((result) => result.key)).size).toBe(1);
    expect(filesUnder(path.join(root, 'sha256'))).toHaveLength(1);
    expect(filesUnder(path.join(root, 'tmp'))).toEqual([]);
    const again = await store.put(body(bytes), { maxBytes: 1_000_000 });
    expect(again.existed).toBe(true);
  });

  it('leaves nothing behind for a body over the limit or a stream that fails', async () => {
    const tooLarge = await refusal(store.put(body(randomBytes(5_000)), { maxBytes: 4_096 }), 'too_large');
    expect(tooLarge.message).toMatch(/larger than the limit of 4096 bytes; nothing was stored/);
    await expect(store.put(body(randomBytes(100_000), { chunk: 10_000, failAfter: 50_000 }), { maxBytes: 1_000_000 })).rejects.toThrow('the client went away');
    expect(filesUnder(root)).toEqual([]);
  });

  it('refuses keys that are not its own, so nothing outside the store is reached', async () => {
    const outside = path.join(root, '..', `exai-outside-${randomBytes(4).toString('hex')}`);
    writeFileSync(outside, 'secret');
    try {
      for (const key of ['../' + path.basename(outside), 'sha256/../../x', `sha256/${'a'.repeat(63)}`, `sha256/${'g'.repeat(64)}`, '/etc/passwd', 'sha256/' + 'a'.repeat(64) + '\0']) {
        await refusal(store.get(key), 'invalid_argument');
        await refusal(store.delete(key), 'invalid_argument');
      }
      expect(existsSync(outside)).toBe(true);
    } finally {
      rmSync(outside, { force: true });
    }
    await refusal(store.get(`sha256/${'a'.repeat(64)}`), 'not_found');
  });

  it('deletes objects, absent ones quietly, and sweeps temporary files a crash left', async () => {
    const stored = await store.put(body(Buffer.from('hello')), { maxBytes: 100 });
    await store.delete(stored.key);
    await store.delete(stored.key);
    expect(await store.stat(stored.key)).toBeUndefined();
    const leftover = path.join(root, 'tmp', 'crashed-upload');
    writeFileSync(leftover, 'half');
    const fresh = path.join(root, 'tmp', 'in-progress');
    writeFileSync(fresh, 'still writing');
    const hourAgo = (Date.now() - 3_600_000) / 1000;
    utimesSync(leftover, hourAgo, hourAgo);
    expect(await store.sweepTemporary(600_000)).toBe(1);
    expect(existsSync(leftover)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
  });
});
