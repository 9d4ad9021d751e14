// A process that uploads a file through the real file handler (built in dist/)
// and is killed (SIGKILL) the moment the bytes are in the object store, before
// any row is written: what a power cut or an OOM kill between the two steps leaves.
// Usage: node crash-after-put.mjs <postgres url> <store folder> <user id>
import { Buffer } from 'node:buffer';
import { openPostgres } from '../../dist/src/db/postgres.js';
import { FileHandler } from '../../dist/src/files/file-handler.js';
import { LocalObjectStore } from '../../dist/src/files/storage/local-object-store.js';
import { MemoryTier } from '../../dist/src/files/tiers/memory-tier.js';
import { TieredReader } from '../../dist/src/files/tiers/tiered-reader.js';
import { createLogger } from '../../dist/src/logger.js';

const [databaseUrl, folder, userId] = process.argv.slice(2);
const logger = createLogger('silent');
const db = await openPostgres({ url: databaseUrl, poolMax: 2, connectTimeoutMs: 5000, queryTimeoutMs: 30000, logger });
const real = new LocalObjectStore(folder);
const store = Object.create(real, {
  put: {
    value: async (...args) => {
      const stored = await real.put(...args);
      process.stdout.write(`${stored.key}\n`, () => process.kill(process.pid, 'SIGKILL'));
      return new Promise(() => {});
    },
  },
});
const reader = new TieredReader({ memory: new MemoryTier({ maxBytes: 1024, maxEntryBytes: 1024 }), disk: undefined, primary: store });
const files = new FileHandler({ db, store, reader, logger });
await files.upload({ userId, name: 'crashed.bin', body: Buffer.from(`bytes whose rows never come ${Date.now()}`) });
