/** The primary object store and the read tiers in front of it, as the configuration says. */
import type { Config } from '../config.js';
import { LocalObjectStore } from './storage/local-object-store.js';
import type { ObjectStore } from './storage/object-store.js';
import { S3ObjectStore } from './storage/s3-object-store.js';
import { DiskTier } from './tiers/disk-tier.js';
import { MemoryTier } from './tiers/memory-tier.js';
import { TieredReader } from './tiers/tiered-reader.js';

export function openObjectStore(storage: Config['storage']): ObjectStore {
  const primary = storage.primary;
  if (primary.kind === 'file') return new LocalObjectStore(primary.directory);
  return new S3ObjectStore({
    bucket: primary.bucket,
    region: primary.region,
    ...(primary.endpoint === undefined ? {} : { endpoint: primary.endpoint }),
    ...(primary.accessKeyId === undefined || primary.secretAccessKey === undefined
      ? {}
      : { accessKeyId: primary.accessKeyId, secretAccessKey: primary.secretAccessKey }),
    ...(primary.forcePathStyle === undefined ? {} : { forcePathStyle: primary.forcePathStyle }),
  });
}

export async function openReadTiers(storage: Config['storage'], primary: ObjectStore): Promise<TieredReader> {
  const memory = new MemoryTier({ maxBytes: storage.memoryBytes, maxEntryBytes: Math.min(storage.memoryMaxFileBytes, storage.memoryBytes) });
  // A local primary store is already a local disk: a cache of it would only copy files.
  const disk = storage.cacheBytes > 0 && primary.kind !== 'file' ? await DiskTier.open({ directory: storage.cacheDirectory, maxBytes: storage.cacheBytes }) : undefined;
  return new TieredReader({ memory, disk, primary });
}
