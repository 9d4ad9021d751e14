/**
 * The unified file handler on both databases and both object stores: uploads
 * are content-addressed and deduplicated per user, reads go through the tiers
 * (ranges too), deletes are soft and purged by the cleanup, and every bad input
 * or fault leaves nothing half-written: oversize bodies, refused types, paths
 * outside the roots, an object store that is down, a crash between the object
 * and its rows.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asService, asUser } from '../../src/db/session.js';
import { purgeDeletedFiles, sweepOrphanObjects } from '../../src/files/file-cleanup.js';
import { FileHandler } from '../../src/files/file-handler.js';
import { S3ObjectStore } from '../../src/files/storage/s3-object-store.js';
import { MemoryTier } from '../../src/files/tiers/memory-tier.js';
import { TieredReader } from '../../src/files/tiers/tiered-reader.js';
import type { ObjectStore } from '../../src/files/storage/object-store.js';
import { ensureUser } from '../../src/users/users.js';
import { silentLogger, storageBackends, type TestDatabase } from '../support/backends.js';
import { body, bytesOf, refusal } from '../support/object-bodies.js';
import { objectStoreKinds, type TestObjectStore } from '../support/object-stores.js';

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe.each(storageBackends())('the file handler on $name', (backend) => {
  describe.each(objectStoreKinds)('with the $name object store', (storeKind) => {
    let database: TestDatabase;
    let objects: TestObjectStore;
    let root: string;
    let alice: string;
    let bob: string;

    function handlerOn(store: ObjectStore): FileHandler {
      const reader = new TieredReader({ memory: new MemoryTier({ maxBytes: 1024 * 1024, maxEntryBytes: 64 * 1024 }), disk: undefined, primary: store });
      return new FileHandler({ db: database.db, store, reader, logger: silentLogger });
    }
    let files: FileHandler;

    async function rowsOf(userId: string): Promise<number> {
      const counted = await asService(database.db, (tx) =>
        tx.query<{ n: number }>('SELECT count(*)::int AS n FROM exai.file_metadata WHERE owner_id = $1', [userId]),
      );
      return counted.rows[0]!.n;
    }

    beforeAll(async () => {
      database = await backend.createDatabase();
      objects = await storeKind.create();
      root = mkdtempSync(path.join(os.tmpdir(), 'exai-upload-root-'));
      alice = (await ensureUser(database.db, 'alice')).id;
      bob = (await ensureUser(database.db, 'bob')).id;
      files = handlerOn(objects.store);
    });

    afterAll(async () => {
      await objects?.close();
      await database?.destroy();
      rmSync(root, { recursive: true, force: true });
    });

    it('stores bytes under their hash, and gives them back whole and by range', async () => {
      const bytes = randomBytes(200_000);
      const uploaded = await files.upload({ userId: alice, name: 'data.bin', body: body(bytes, { chunk: 7_000 }) });
      expect(uploaded).toMatchObject({ deduplicated: false, objectExisted: false });
      expect(uploaded.file).toMatchObject({ name: 'data.bin', bucket: 'user-uploads', size: bytes.length, sha256: sha(bytes), mimeType: 'application/octet-stream' });
      expect(await objects.keys()).toContain(`sha256/${sha(bytes)}`);
      expect(await files.info(alice, uploaded.file.id)).toEqual(uploaded.file);
      expect(await bytesOf((await files.open(alice, uploaded.file.id)).stream)).toEqual(bytes);
      expect(await bytesOf((await files.open(alice, uploaded.file.id, { start: 1000, end: 1999 })).stream)).toEqual(bytes.subarray(1000, 2000));
      expect(await bytesOf((await files.open(alice, uploaded.file.id, { start: 199_990 })).stream)).toEqual(bytes.subarray(199_990));
      await refusal(files.open(alice, uploaded.file.id, { start: 10, end: 200_000 }), 'invalid_argument');
      const listed = await files.list(alice);
      expect(listed.files.map((file) => file.id)).toContain(uploaded.file.id);
    });

    it('keeps one row per user and one object for everyone when the same bytes come again', async () => {
      const bytes = Buffer.from(`shared notes ${randomBytes(8).toString('hex')}\n`);
      const first = await files.upload({ userId: alice, name: 'notes.md', body: bytes });
      const again = await files.upload({ userId: alice, name: 'renamed.md', body: bytes });
      expect(again).toMatchObject({ deduplicated: true, objectExisted: true });
      expect(again.file.id).toBe(first.file.id);
      expect(first.file.mimeType).toBe('text/markdown');
      const theirs = await files.upload({ userId: bob, name: 'notes.md', body: bytes });
      expect(theirs).toMatchObject({ deduplicated: false, objectExisted: true });
      expect(theirs.file.id).not.toBe(first.file.id);
      expect((await objects.keys()).filter((key) => key === `sha256/${sha(bytes)}`)).toHaveLength(1);
    });

    it('checks a declared SHA-256: bytes already stored are only hashed, and bytes that hash otherwise are refused', async () => {
      const bytes = randomBytes(40_000);
      const first = await files.upload({ userId: alice, name: 'declared.bin', body: bytes, sha256: sha(bytes) });
      expect(first).toMatchObject({ deduplicated: false, objectExisted: false });
      const theirs = await files.upload({ userId: bob, name: 'declared.bin', body: body(bytes, { chunk: 4_000 }), sha256: sha(bytes) });
      expect(theirs).toMatchObject({ deduplicated: false, objectExisted: true });
      expect(theirs.file.sha256).toBe(sha(bytes));
      const keysBefore = await objects.keys();
      const rowsBefore = await rowsOf(bob);
      const other = randomBytes(40_000);
      // Claiming stored bytes without having them, and sending new bytes under a wrong hash, both fail.
      expect((await refusal(files.upload({ userId: bob, name: 'claim.bin', body: other, sha256: sha(bytes) }), 'invalid_argument')).message).toMatch(/not the sha256 .* that was declared; nothing was stored/);
      await refusal(files.upload({ userId: bob, name: 'new.bin', body: other, sha256: sha(randomBytes(8)) }), 'invalid_argument');
      await refusal(files.upload({ userId: bob, name: 'bad.bin', body: other, sha256: 'ABC' }), 'invalid_argument');
      expect(await objects.keys()).toEqual(keysBefore);
      expect(await rowsOf(bob)).toBe(rowsBefore);
    });

    it('makes one row and one object of concurrent uploads of the same bytes', async () => {
      const bytes = randomBytes(50_000);
      const before = await rowsOf(alice);
      const results = await Promise.all(Array.from({ length: 5 }, () => files.upload({ userId: alice, name: 'race.bin', body: body(bytes, { chunk: 5_000 }) })));
      expect(new Set(results.map((result) => result.file.id)).size).toBe(1);
      expect(results.filter((result) => !result.deduplicated)).toHaveLength(1);
      expect(await rowsOf(alice)).toBe(before + 1);
      expect((await objects.keys()).filter((key) => key === `sha256/${sha(bytes)}`)).toHaveLength(1);
    });

    it('refuses a file over the bucket limit and one of a type the bucket does not take, storing nothing', async () => {
      await asService(database.db, (tx) => tx.query("UPDATE exai.file_buckets SET max_bytes = 100000 WHERE name = 'conversation-files'"));
      const keysBefore = await objects.keys();
      const rowsBefore = await rowsOf(alice);
      const over = await refusal(files.upload({ userId: alice, name: 'big.txt', bucket: 'conversation-files', body: body(randomBytes(300_000), { chunk: 16_000 }) }), 'too_large');
      expect(over.message).toMatch(/100000-byte limit of bucket conversation-files; nothing was stored/);
      await refusal(files.upload({ userId: alice, name: 'big.txt', bucket: 'conversation-files', body: randomBytes(100_001) }), 'too_large');
      const refused = await refusal(files.upload({ userId: alice, name: 'setup.exe', bucket: 'conversation-files', body: Buffer.from('MZ') }), 'unsupported_media_type');
      expect(refused.message).toMatch(/does not take application\/.* files/);
      await refusal(files.upload({ userId: alice, name: 'a.txt', bucket: 'no-such-bucket', body: Buffer.from('x') }), 'invalid_argument');
      await refusal(files.upload({ userId: alice, name: 'bad\u0000name.txt', body: Buffer.from('x') }), 'invalid_argument');
      expect((await refusal(files.upload({ userId: alice, name: 'a.bin', mimeType: 'not a type', body: Buffer.from('x') }), 'invalid_argument')).message).toMatch(/is not a MIME type/);
      expect(await objects.keys()).toEqual(keysBefore);
      expect(await rowsOf(alice)).toBe(rowsBefore);
      const fits = await files.upload({ userId: alice, name: 'ok.ts', bucket: 'conversation-files', body: Buffer.from('export const ok = 1;\n') });
      expect(fits.file).toMatchObject({ bucket: 'conversation-files', mimeType: expect.stringMatching(/typescript/) });
    });

    it('uploads a file from an allowed path and refuses traversal, outside paths, links out, NUL bytes and drive paths', async () => {
      const access = { allowedRoots: [root], protectedPaths: [] };
      const inside = path.join(root, 'project');
      mkdirSync(inside, { recursive: true });
      writeFileSync(path.join(inside, 'main.py'), 'print("hi")\n');
      const outside = mkdtempSync(path.join(os.tmpdir(), 'exai-outside-'));
      writeFileSync(path.join(outside, 'secret.txt'), 'not yours');
      symlinkSync(path.join(outside, 'secret.txt'), path.join(inside, 'link.txt'));
      try {
        const ok = await files.uploadPath({ userId: alice, path: path.join(inside, 'main.py'), access });
        expect(ok.file).toMatchObject({ name: path.join(inside, 'main.py'), size: 12 });
        const rowsBefore = await rowsOf(alice);
        for (const bad of [
          `${inside}/../../${path.basename(outside)}/secret.txt`,
          path.join(outside, 'secret.txt'),
          path.join(inside, 'link.txt'),
          `${inside}/main.py\u0000.txt`,
          'C:\\Users\\me\\secret.txt',
          'relative/main.py',
        ]) {
          await refusal(files.uploadPath({ userId: alice, path: bad, access }), 'invalid_argument');
        }
        expect(await rowsOf(alice)).toBe(rowsBefore);
      } finally {
        rmSync(outside, { recursive: true, force: true });
      }
    });

    it('shows another user nothing of a file: not in lists, not by id, not to delete', async () => {
      const mine = await files.upload({ userId: alice, name: 'private.txt', body: Buffer.from(`alice only ${randomBytes(4).toString('hex')}`) });
      expect((await files.list(bob)).files.map((file) => file.id)).not.toContain(mine.file.id);
      await refusal(files.info(bob, mine.file.id), 'not_found');
      await refusal(files.open(bob, mine.file.id), 'not_found');
      await refusal(files.delete(bob, mine.file.id), 'not_found');
      const direct = await asUser(database.db, bob, (tx) => tx.query('SELECT id FROM exai.file_metadata WHERE id = $1', [mine.file.id]));
      expect(direct.rows).toEqual([]);
      expect((await files.info(alice, mine.file.id)).id).toBe(mine.file.id);
    });

    it('deletes softly, then purges the row and the object once no one refers to it', async () => {
      const bytes = Buffer.from(`to be deleted ${randomBytes(8).toString('hex')}`);
      const aliceFile = await files.upload({ userId: alice, name: 'gone.txt', body: bytes });
      const bobFile = await files.upload({ userId: bob, name: 'kept.txt', body: bytes });
      await files.delete(alice, aliceFile.file.id);
      await refusal(files.info(alice, aliceFile.file.id), 'not_found');
      expect((await files.list(alice)).files.map((file) => file.id)).not.toContain(aliceFile.file.id);
      expect((await purgeDeletedFiles({ db: database.db, store: objects.store, logger: silentLogger }, { graceMs: 0 })).rows).toBeGreaterThanOrEqual(1);
      expect(await objects.keys()).toContain(`sha256/${sha(bytes)}`);
      expect(await bytesOf((await files.open(bob, bobFile.file.id)).stream)).toEqual(bytes);
      await files.delete(bob, bobFile.file.id);
      const purged = await purgeDeletedFiles({ db: database.db, store: objects.store, logger: silentLogger }, { graceMs: 0 });
      expect(purged.objects).toBeGreaterThanOrEqual(1);
      expect(await objects.keys()).not.toContain(`sha256/${sha(bytes)}`);
      // Uploaded again afterwards, the bytes are stored anew.
      const back = await files.upload({ userId: alice, name: 'back.txt', body: bytes });
      expect(back).toMatchObject({ deduplicated: false, objectExisted: false });
      expect(await bytesOf((await files.open(alice, back.file.id)).stream)).toEqual(bytes);
    });

    it('writes no row when the object store is down, and says so clearly', async () => {
      const down = new S3ObjectStore({ bucket: 'exai-files', endpoint: 'http://127.0.0.1:1', region: 'us-east-1', accessKeyId: 'k', secretAccessKey: 'never-shown-secret' });
      try {
        const rowsBefore = await rowsOf(alice);
        const error = await refusal(handlerOn(down).upload({ userId: alice, name: 'x.txt', body: Buffer.from('x') }), 'storage_unavailable');
        expect(error.message).toMatch(/bucket "exai-files"/);
        expect(error.message).not.toContain('never-shown-secret');
        expect(await rowsOf(alice)).toBe(rowsBefore);
      } finally {
        down.close();
      }
    });

    it('leaves no row when the rows cannot be written after the object was, and sweeps the orphaned object', async () => {
      const bytes = randomBytes(30_000);
      // A user that does not exist: the object is written, then the row's foreign key fails.
      await expect(files.upload({ userId: '00000000-0000-4000-8000-000000000001', name: 'orphan.bin', body: bytes })).rejects.toThrow();
      expect(await objects.keys()).toContain(`sha256/${sha(bytes)}`);
      const known = await asService(database.db, (tx) => tx.query('SELECT 1 FROM exai.file_objects WHERE storage_key = $1', [`sha256/${sha(bytes)}`]));
      expect(known.rows).toEqual([]);
      const kept = await files.upload({ userId: alice, name: 'kept.bin', body: randomBytes(1_000) });
      const swept = await sweepOrphanObjects({ db: database.db, store: objects.store, logger: silentLogger }, { graceMs: -60_000 });
      expect(swept.objects).toBeGreaterThanOrEqual(1);
      const keys = await objects.keys();
      expect(keys).not.toContain(`sha256/${sha(bytes)}`);
      expect(keys).toContain(kept.file.storageKey);
      expect(keys.filter((key) => key.startsWith('tmp'))).toEqual([]);
    });

    it('refuses to record a reused object that a purge removed meanwhile, rather than keep a row without bytes', async () => {
      const bytes = Buffer.from(`raced ${randomBytes(8).toString('hex')}`);
      const first = await files.upload({ userId: bob, name: 'raced.txt', body: bytes });
      await files.delete(bob, first.file.id);
      // The store still holds the bytes when this upload's put finds them; the purge runs before its rows are written.
      const racing: ObjectStore = Object.create(objects.store, {
        put: {
          value: async (...args: Parameters<ObjectStore['put']>) => {
            const stored = await objects.store.put(...args);
            await purgeDeletedFiles({ db: database.db, store: objects.store, logger: silentLogger }, { graceMs: 0 });
            return stored;
          },
        },
      }) as ObjectStore;
      const error = await refusal(handlerOn(racing).upload({ userId: bob, name: 'raced.txt', body: bytes }), 'conflict');
      expect(error.message).toMatch(/Upload it again/);
      const retried = await files.upload({ userId: bob, name: 'raced.txt', body: bytes });
      expect(await bytesOf((await files.open(bob, retried.file.id)).stream)).toEqual(bytes);
    });
  });
});
