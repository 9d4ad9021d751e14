/**
 * Both primary object stores for the file suites: a local folder, and an S3
 * bucket on s3rver running on loopback (a real S3 protocol peer, not a mock of
 * the SDK). Each `create()` gives a fresh, empty store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { LocalObjectStore } from '../../src/files/storage/local-object-store.js';
import type { ObjectStore } from '../../src/files/storage/object-store.js';
import { S3ObjectStore } from '../../src/files/storage/s3-object-store.js';

export interface TestObjectStore {
  store: ObjectStore;
  /** Every object key in the store, sorted (temporary uploads included). */
  keys(): Promise<string[]>;
  /** The S3 settings a spawned server would need; empty for the local store. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export interface ObjectStoreKind {
  name: 'local' | 's3';
  create(): Promise<TestObjectStore>;
}

async function walk(folder: string, prefix = ''): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  const entries = await readdir(folder, { withFileTypes: true }).catch(() => []);
  const found: string[] = [];
  for (const entry of entries) {
    const relative = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) found.push(...(await walk(path.join(folder, entry.name), relative)));
    else found.push(relative);
  }
  return found;
}

export const localStoreKind: ObjectStoreKind = {
  name: 'local',
  async create() {
    const folder = mkdtempSync(path.join(os.tmpdir(), 'exai-objects-'));
    return {
      store: new LocalObjectStore(folder),
      // sha256/ab/cd/<hex> → sha256/<hex>, as the S3 store names them.
      keys: async () => (await walk(folder)).map((file) => (file.startsWith('sha256/') ? `sha256/${file.split('/').at(-1)}` : file)).sort(),
      env: { EXAI_STORAGE_URL: `file://${folder}` },
      close: async () => rmSync(folder, { recursive: true, force: true }),
    };
  },
};

const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export const s3StoreKind: ObjectStoreKind = {
  name: 's3',
  async create() {
    const folder = mkdtempSync(path.join(os.tmpdir(), 'exai-s3rver-'));
    const bucket = 'exai-files';
    const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: folder, configureBuckets: [{ name: bucket, configs: [] }] });
    const address = (await server.run()) as AddressInfo;
    const endpoint = `http://127.0.0.1:${address.port}`;
    const store = new S3ObjectStore({ bucket, endpoint, region: 'us-east-1', ...credentials });
    const raw = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
    return {
      store,
      keys: async () => {
        const listed = await raw.send(new ListObjectsV2Command({ Bucket: bucket }));
        return (listed.Contents ?? []).map((object) => object.Key!).sort();
      },
      env: {
        EXAI_STORAGE_URL: `s3://${bucket}`,
        EXAI_S3_ENDPOINT: endpoint,
        EXAI_S3_ACCESS_KEY_ID: credentials.accessKeyId,
        EXAI_S3_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      },
      close: async () => {
        store.close();
        raw.destroy();
        await server.close();
        rmSync(folder, { recursive: true, force: true });
      },
    };
  },
};

export const objectStoreKinds: ObjectStoreKind[] = [localStoreKind, s3StoreKind];
