/**
 * The S3 store against a real S3-compatible server on loopback (s3rver):
 * content addressing, multipart bodies, one object for racing uploads of the
 * same bytes, nothing left by a body over the limit or a failed stream, and a
 * clear error naming the bucket (never the credentials) when the server is down.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ObjectStore } from '../../src/files/storage/s3-object-store.js';
import { body, bytesOf, refusal } from '../support/object-bodies.js';

const bucket = 'exai-test';
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER-secret-never-shown' };

describe('the S3 object store against s3rver', () => {
  let folder: string;
  let server: S3rver;
  let endpoint: string;
  let store: S3ObjectStore;
  let raw: S3Client;

  async function keys(prefix = ''): Promise<string[]> {
    const listed = await raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return (listed.Contents ?? []).map((object) => object.Key!).sort();
  }

  beforeAll(async () => {
    folder = mkdtempSync(path.join(os.tmpdir(), 'exai-s3rver-'));
    server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: folder, configureBuckets: [{ name: bucket, configs: [] }] });
    const address = (await server.run()) as AddressInfo;
    endpoint = `http://127.0.0.1:${address.port}`;
    store = new S3ObjectStore({ bucket, endpoint, region: 'us-east-1', ...credentials });
    raw = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  });

  afterAll(async () => {
    store?.close();
    raw?.destroy();
    await server?.close();
    rmSync(folder, { recursive: true, force: true });
  });

  it('stores a multipart body under its SHA-256 and gives it back, whole or by range', async () => {
    const bytes = randomBytes(12 * 1024 * 1024);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const stored = await store.put(body(bytes), { maxBytes: 64 * 1024 * 1024 });
    expect(stored).toEqual({ key: `sha256/${sha256}`, sha256, size: bytes.length, existed: false });
    expect(createHash('sha256').update(await bytesOf(await store.get(stored.key))).digest('hex')).toBe(sha256);
    expect(await bytesOf(await store.get(stored.key, { start: 5, end: 104 }))).toEqual(bytes.subarray(5, 105));
    expect(await store.stat(stored.key)).toEqual({ size: bytes.length });
    expect(await keys('tmp/')).toEqual([]);
  }, 60_000);

  it('keeps one object for the same bytes, however many uploads race', async () => {
    const bytes = randomBytes(100_000);
    const results = await Promise.all(Array.from({ length: 5 }, () => store.put(body(bytes, { chunk: 9_000 }), { maxBytes: 1_000_000 })));
    expect(new Set(results.map((result) => result.key)).size).toBe(1);
    expect((await keys('sha256/')).filter((key) => key === results[0]!.key)).toHaveLength(1);
    expect((await store.put(body(bytes), { maxBytes: 1_000_000 })).existed).toBe(true);
    expect(await keys('tmp/')).toEqual([]);
  });

  it('leaves nothing behind for a body over the limit or a stream that fails', async () => {
    const before = await keys();
    await refusal(store.put(body(randomBytes(300_000), { chunk: 50_000 }), { maxBytes: 100_000 }), 'too_large');
    await expect(store.put(body(randomBytes(300_000), { chunk: 50_000, failAfter: 150_000 }), { maxBytes: 1_000_000 })).rejects.toThrow(/client went away/);
    expect(await keys()).toEqual(before);
  });

  it('refuses keys that are not its own, answers not_found for absent ones, and deletes quietly', async () => {
    for (const key of ['../x', 'tmp/anything', `sha256/${'z'.repeat(64)}`]) await refusal(store.get(key), 'invalid_argument');
    await refusal(store.get(`sha256/${'a'.repeat(64)}`), 'not_found');
    expect(await store.stat(`sha256/${'a'.repeat(64)}`)).toBeUndefined();
    await store.delete(`sha256/${'a'.repeat(64)}`);
    const stored = await store.put(body(Buffer.from('short-lived')), { maxBytes: 100 });
    await store.delete(stored.key);
    expect(await store.stat(stored.key)).toBeUndefined();
  });

  it('sweeps temporary objects a crash left', async () => {
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'tmp/crashed-upload', Body: 'half' }));
    expect(await store.sweepTemporary(60_000)).toBe(0);
    expect(await store.sweepTemporary(60_000, Date.now() + 120_000)).toBe(1);
    expect(await keys('tmp/')).toEqual([]);
  });

  it('says clearly when the object store is down, naming the bucket and never the credentials', async () => {
    const down = new S3ObjectStore({ bucket, endpoint: 'http://127.0.0.1:1', region: 'us-east-1', ...credentials });
    try {
      const error = await refusal(down.put(body(Buffer.from('x')), { maxBytes: 100 }), 'storage_unavailable');
      expect(error.message).toMatch(/Could not store the file in bucket "exai-test" at http:\/\/127\.0\.0\.1:1/);
      expect(error.message).not.toContain(credentials.secretAccessKey);
      expect((await refusal(down.stat(`sha256/${'a'.repeat(64)}`), 'storage_unavailable')).message).not.toContain(credentials.secretAccessKey);
    } finally {
      down.close();
    }
  });
});
