/**
 * The processing job on both databases and both object stores: large text is
 * kept gzipped and read back byte for byte (whole and by range) after the
 * plain copy is swept; text is extracted from text and PDF files; images get
 * a WebP preview; content that cannot be processed is marked done without
 * failing the job; a gzip-encoded upload that inflates past the bucket limit
 * (a gzip bomb) is refused having stored nothing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asService } from '../../src/db/session.js';
import { purgeDeletedFiles, sweepOrphanObjects } from '../../src/files/file-cleanup.js';
import { FileHandler } from '../../src/files/file-handler.js';
import { processObject, processPendingObjects } from '../../src/files/file-processing.js';
import { MemoryTier } from '../../src/files/tiers/memory-tier.js';
import { TieredReader } from '../../src/files/tiers/tiered-reader.js';
import { ensureUser } from '../../src/users/users.js';
import { silentLogger, storageBackends, type TestDatabase } from '../support/backends.js';
import { bytesOf, refusal } from '../support/object-bodies.js';
import { objectStoreKinds, type TestObjectStore } from '../support/object-stores.js';
import { makePdf } from './processing/make-pdf.js';

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Markdown that compresses well but is not all the same line. */
function largeMarkdown(lines: number): Buffer {
  return Buffer.from(Array.from({ length: lines }, (_, index) => `- item ${index}: ${index % 7 === 0 ? 'see the section on retries' : 'nothing to add'}\n`).join(''));
}

describe.each(storageBackends())('file processing on $name', (backend) => {
  describe.each(objectStoreKinds)('with the $name object store', (storeKind) => {
    let database: TestDatabase;
    let objects: TestObjectStore;
    let files: FileHandler;
    let alice: string;
    const deps = () => ({ db: database.db, store: objects.store, logger: silentLogger });

    async function objectRow(key: string) {
      const found = await asService(database.db, (tx) =>
        tx.query<{ stored_key: string; stored_encoding: string; stored_size: string; preview_key: string | null; processed_at: Date | null }>(
          'SELECT stored_key, stored_encoding, stored_size, preview_key, processed_at FROM exai.file_objects WHERE storage_key = $1',
          [key],
        ),
      );
      return found.rows[0]!;
    }

    async function textOf(key: string): Promise<{ format: string; content: string; pages: number | null } | undefined> {
      const found = await asService(database.db, (tx) => tx.query<{ format: string; content: string; pages: number | null }>('SELECT format, content, pages FROM exai.file_texts WHERE storage_key = $1', [key]));
      return found.rows[0];
    }

    beforeAll(async () => {
      database = await backend.createDatabase();
      objects = await storeKind.create();
      const reader = new TieredReader({ memory: new MemoryTier({ maxBytes: 1024 * 1024, maxEntryBytes: 64 * 1024 }), disk: undefined, primary: objects.store });
      files = new FileHandler({ db: database.db, store: objects.store, reader, logger: silentLogger });
      alice = (await ensureUser(database.db, 'alice')).id;
    });

    afterAll(async () => {
      await objects?.close();
      await database?.destroy();
    });

    it('keeps large text gzipped, reads it back exactly, and lets the sweep remove the plain copy', async () => {
      const bytes = largeMarkdown(20_000);
      const { file } = await files.upload({ userId: alice, name: 'notes.md', body: bytes });
      expect(await processObject(deps(), file.storageKey)).toMatchObject({ text: true, gzipped: true });
      const row = await objectRow(file.storageKey);
      expect(row.stored_encoding).toBe('gzip');
      expect(Number(row.stored_size)).toBeLessThan(bytes.length / 5);
      expect((await textOf(file.storageKey))?.format).toBe('markdown');
      await sweepOrphanObjects(deps(), { graceMs: -60_000 });
      const keys = await objects.keys();
      expect(keys).not.toContain(file.storageKey);
      expect(keys).toContain(row.stored_key);
      expect(sha(await bytesOf((await files.open(alice, file.id)).stream))).toBe(sha(bytes));
      expect(await bytesOf((await files.open(alice, file.id, { start: 70_000, end: 70_099 })).stream)).toEqual(bytes.subarray(70_000, 70_100));
      // The same bytes uploaded again are the same file, still read through the gzip object.
      const again = await files.upload({ userId: alice, name: 'again.md', body: bytes });
      expect(again.deduplicated).toBe(true);
      expect(sha(await bytesOf((await files.open(alice, again.file.id)).stream))).toBe(sha(bytes));
      // Deleted and purged, both objects go.
      await files.delete(alice, file.id);
      await purgeDeletedFiles(deps(), { graceMs: 0 });
      await sweepOrphanObjects(deps(), { graceMs: -60_000 });
      const after = await objects.keys();
      expect(after).not.toContain(row.stored_key);
      expect(after).not.toContain(file.storageKey);
    });

    it('extracts the text of a PDF and makes a WebP preview of an image', async () => {
      const pdf = await files.upload({ userId: alice, name: 'spec.pdf', body: makePdf(['Retries back off exponentially.', 'Second page here.']) });
      const png = await sharp({ create: { width: 3000, height: 1500, channels: 3, background: { r: 200, g: 30, b: 30 } } }).png().toBuffer();
      const image = await files.upload({ userId: alice, name: 'diagram.png', body: png });
      expect(await processPendingObjects(deps())).toBeGreaterThanOrEqual(2);
      const text = await textOf(pdf.file.storageKey);
      expect(text).toMatchObject({ format: 'pdf', pages: 2 });
      expect(text!.content).toContain('Retries back off exponentially.');
      const preview = await files.openPreview(alice, image.file.id);
      const info = await sharp(await bytesOf(preview.stream)).metadata();
      expect(info).toMatchObject({ format: 'webp', width: 1568, height: 784 });
      await refusal(files.openPreview(alice, pdf.file.id), 'not_found');
      expect((await objectRow(image.file.storageKey)).processed_at).not.toBeNull();
    });

    it('keeps a preview that is also someone\'s file when the image it was made from is purged', async () => {
      const png = await sharp({ create: { width: 2000, height: 400, channels: 3, background: { r: 10, g: 200, b: 90 } } }).png().toBuffer();
      const image = await files.upload({ userId: alice, name: 'banner.png', body: png });
      await processObject(deps(), image.file.storageKey);
      const preview = await bytesOf((await files.openPreview(alice, image.file.id)).stream);
      const bob = (await ensureUser(database.db, 'bob')).id;
      const copy = await files.upload({ userId: bob, name: 'banner-preview.webp', body: preview });
      await files.delete(alice, image.file.id);
      await purgeDeletedFiles(deps(), { graceMs: 0 });
      await sweepOrphanObjects(deps(), { graceMs: -60_000 });
      expect(await objects.keys()).not.toContain(image.file.storageKey);
      expect(await bytesOf((await files.open(bob, copy.file.id)).stream)).toEqual(preview);
    });

    it('goes on with other objects when one fails, and gives up on it after five tries', async () => {
      const lost = await files.upload({ userId: alice, name: 'lost.md', body: largeMarkdown(100) });
      await objects.store.delete(lost.file.storageKey);
      const fine = await files.upload({ userId: alice, name: 'fine.md', body: largeMarkdown(200) });
      for (let run = 0; run < 6; run += 1) await processPendingObjects(deps());
      expect((await objectRow(fine.file.storageKey)).processed_at).not.toBeNull();
      const failed = await asService(database.db, (tx) =>
        tx.query<{ process_attempts: number; process_error: string; processed_at: Date | null }>('SELECT process_attempts, process_error, processed_at FROM exai.file_objects WHERE storage_key = $1', [lost.file.storageKey]),
      );
      expect(failed.rows[0]).toMatchObject({ process_attempts: 5, processed_at: null });
      expect(failed.rows[0]!.process_error).toMatch(/No stored object|not_found|NoSuchKey/i);
    });

    it('marks content it cannot read as done, without failing', async () => {
      const binary = Buffer.concat([Buffer.from('not really text'), Buffer.alloc(100, 0), randomBytes(100)]);
      const { file } = await files.upload({ userId: alice, name: 'data.txt', body: binary });
      const broken = await files.upload({ userId: alice, name: 'broken.pdf', body: Buffer.from('%PDF-1.4 nothing else') });
      await processPendingObjects(deps());
      expect(await textOf(file.storageKey)).toBeUndefined();
      expect(await textOf(broken.file.storageKey)).toBeUndefined();
      expect((await objectRow(file.storageKey)).processed_at).not.toBeNull();
      expect((await objectRow(broken.file.storageKey)).processed_at).not.toBeNull();
      expect(await bytesOf((await files.open(alice, file.id)).stream)).toEqual(binary);
    });

    it('refuses a gzip-encoded upload that inflates past the bucket limit, storing nothing', async () => {
      await asService(database.db, (tx) => tx.query("UPDATE exai.file_buckets SET max_bytes = 1048576 WHERE name = 'user-uploads'"));
      try {
        // 200 MB of zeros, about 200 KB compressed.
        const bomb = Readable.from((function* () {
          for (let index = 0; index < 200; index += 1) yield Buffer.alloc(1024 * 1024);
        })()).pipe(createGzip());
        const keysBefore = await objects.keys();
        const rowsBefore = await asService(database.db, (tx) => tx.query<{ n: number }>('SELECT count(*)::int AS n FROM exai.file_metadata'));
        const started = Date.now();
        const error = await refusal(files.upload({ userId: alice, name: 'bomb.txt', body: bomb, contentEncoding: 'gzip' }), 'too_large');
        expect(error.message).toMatch(/1048576-byte limit of bucket user-uploads/);
        expect(Date.now() - started).toBeLessThan(10_000);
        expect(await objects.keys()).toEqual(keysBefore);
        const rowsAfter = await asService(database.db, (tx) => tx.query<{ n: number }>('SELECT count(*)::int AS n FROM exai.file_metadata'));
        expect(rowsAfter.rows[0]!.n).toBe(rowsBefore.rows[0]!.n);
        // A small gzip-encoded body is stored inflated.
        const plain = Buffer.from('compressed on the way in\n'.repeat(100));
        const ok = await files.upload({ userId: alice, name: 'small.txt', body: Readable.from([plain]).pipe(createGzip()), contentEncoding: 'gzip' });
        expect(ok.file.size).toBe(plain.length);
        expect(await bytesOf((await files.open(alice, ok.file.id)).stream)).toEqual(plain);
      } finally {
        await asService(database.db, (tx) => tx.query("UPDATE exai.file_buckets SET max_bytes = 1073741824 WHERE name = 'user-uploads'"));
      }
    });
  });
});
