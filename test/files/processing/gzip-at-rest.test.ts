/**
 * Gzip at rest: a byte-exact round trip, a gzip bomb refused after little
 * inflation and little memory, data that is not gzip refused clearly, and
 * which files are worth gzipping.
 */
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { ExaiError } from '../../../src/errors.js';
import { GZIP_MIN_BYTES, gunzipLimited, gzipStream, isGzipBytes, shouldGzip } from '../../../src/files/processing/gzip-at-rest.js';
import { body, bytesOf } from '../../support/object-bodies.js';

const MiB = 1024 * 1024;

/** A few MB of varied, line-oriented text, like a log or a source dump. */
function largeText(): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < 60_000; i++) lines.push(`${i}\tline ${i * 7919} — ünïcödé ✓ ${(i * 2654435761) % 1000003}\r\n`);
  return Buffer.from(lines.join(''), 'utf8');
}

async function gzipOf(source: Readable): Promise<Buffer> {
  return bytesOf(source.pipe(gzipStream()));
}

/** `total` bytes of zeros, streamed from one reused chunk so building the bomb costs no memory. */
function zeros(total: number): Readable {
  const chunk = Buffer.alloc(MiB);
  let left = total;
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null);
      const size = Math.min(left, chunk.length);
      left -= size;
      this.push(size === chunk.length ? chunk : chunk.subarray(0, size));
    },
  });
}

/** Drains a stream, counting the bytes that came out. */
function counter(): Writable & { count: number } {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      sink.count += chunk.length;
      callback();
    },
  }) as Writable & { count: number };
  sink.count = 0;
  return sink;
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('gzip at rest', () => {
  it('round-trips a large text byte for byte, much smaller at rest', async () => {
    const text = largeText();
    const gzipped = await gzipOf(body(text));
    expect(isGzipBytes(gzipped.subarray(0, 3))).toBe(true);
    expect(gzipped.length).toBeLessThan(text.length / 3);

    const back = await bytesOf(body(gzipped, { chunk: 4096 }).pipe(gunzipLimited(text.length)));
    expect(back.length).toBe(text.length);
    expect(sha256(back)).toBe(sha256(text));
  });

  it('allows output of exactly the limit, and refuses one byte more', async () => {
    const gzipped = await gzipOf(body(Buffer.alloc(100_000, 'a')));
    expect((await bytesOf(body(gzipped).pipe(gunzipLimited(100_000)))).length).toBe(100_000);
    await expect(bytesOf(body(gzipped).pipe(gunzipLimited(99_999)))).rejects.toMatchObject({ code: 'too_large' });
  });

  it('refuses a gzip bomb after inflating little of it, quickly and in little memory', async () => {
    const inflated = 200 * MiB;
    const bomb = await gzipOf(zeros(inflated));
    expect(bomb.length).toBeLessThan(inflated / 500);

    const limit = 4 * MiB;
    const sink = counter();
    let fed = 0;
    const source = body(bomb, { chunk: 16 * 1024 }).on('data', (chunk: Buffer) => (fed += chunk.length));
    global.gc?.();
    const memoryBefore = process.memoryUsage();
    const started = performance.now();

    const error = await pipeline(source, gunzipLimited(limit), sink).then(
      () => undefined,
      (caught: unknown) => caught,
    );

    const elapsed = performance.now() - started;
    const memoryAfter = process.memoryUsage();
    expect(error).toBeInstanceOf(ExaiError);
    expect((error as ExaiError).code).toBe('too_large');
    expect((error as ExaiError).message).toContain(`${limit} bytes`);
    // Nothing past the limit reached the reader, and inflation stopped within a few zlib chunks of it.
    expect(sink.count).toBeLessThanOrEqual(limit);
    expect(sink.count).toBeGreaterThan(limit - 64 * 1024);
    // Only the first chunks of the bomb were read (the rest of the ~200 KB never left the source).
    expect(fed).toBeLessThanOrEqual(4 * 16 * 1024);
    expect(fed).toBeLessThan(bomb.length / 4);
    expect(elapsed).toBeLessThan(2000);
    const grown = memoryAfter.rss - memoryBefore.rss + (memoryAfter.arrayBuffers - memoryBefore.arrayBuffers);
    expect(grown).toBeLessThan(64 * MiB);
  });

  it('refuses data that is not gzip, and gzip cut short, as invalid_argument', async () => {
    await expect(bytesOf(body(Buffer.from('plain text, not gzip')).pipe(gunzipLimited(MiB)))).rejects.toMatchObject({
      code: 'invalid_argument',
      message: expect.stringContaining('not valid gzip'),
    });
    const gzipped = await gzipOf(body(largeText()));
    await expect(bytesOf(body(gzipped.subarray(0, gzipped.length / 2)).pipe(gunzipLimited(100 * MiB)))).rejects.toMatchObject({
      code: 'invalid_argument',
    });
  });

  it('rejects a limit that is not a whole number of bytes', () => {
    expect(() => gunzipLimited(-1)).toThrow(ExaiError);
    expect(() => gunzipLimited(Number.NaN)).toThrow(ExaiError);
  });

  it('recognises gzip by its first bytes', () => {
    expect(isGzipBytes(Buffer.from([0x1f, 0x8b, 0x08, 0x00]))).toBe(true);
    expect(isGzipBytes(Buffer.from([0x1f, 0x8b]))).toBe(false);
    expect(isGzipBytes(Buffer.from('%PDF-1.7'))).toBe(false);
    expect(isGzipBytes(Buffer.alloc(0))).toBe(false);
  });

  it('gzips large text-like files only', () => {
    const large = GZIP_MIN_BYTES;
    for (const type of [
      'text/plain',
      'text/markdown; charset=utf-8',
      'TEXT/CSV',
      'text/x-python',
      'application/json',
      'application/vnd.api+json',
      'application/xml',
      'image/svg+xml',
      'application/javascript',
      'application/yaml',
    ]) {
      expect(shouldGzip(type, large), type).toBe(true);
    }
    for (const type of ['application/gzip', 'application/zip', 'application/pdf', 'image/png', 'image/jpeg', 'application/octet-stream', 'application/epub+zip', 'video/mp4']) {
      expect(shouldGzip(type, 100 * MiB), type).toBe(false);
    }
    expect(shouldGzip('text/plain', GZIP_MIN_BYTES - 1)).toBe(false);
    expect(shouldGzip('application/json', 0)).toBe(false);
  });
});
