/**
 * Image resizing with sharp: aspect ratio kept, never enlarged, EXIF rotation
 * applied, streams read with a byte limit; text, SVG and a PNG whose header
 * claims ten gigapixels refused before any decoding.
 */
import { Readable } from 'node:stream';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { imageInfo, resizeImage } from '../../../src/files/processing/images.js';
import { body, refusal } from '../../support/object-bodies.js';

async function solidPng(width: number, height: number, alpha = 1): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 4, background: { r: 200, g: 40, b: 90, alpha } } })
    .png()
    .toBuffer();
}

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = crcTable[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([length, typed, crc]);
}

/** A valid PNG header claiming width × height pixels, with a few bytes of (far too little) image data. */
function pixelBomb(width: number, height: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, deflate, no filter method quirks, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.alloc(1024))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('resizeImage', () => {
  it('fits a 1200×800 PNG into 400×400 as a 400×267 WebP', async () => {
    const result = await resizeImage(await solidPng(1200, 800), { maxWidth: 400, maxHeight: 400, format: 'webp' });
    expect(result).toMatchObject({ width: 400, height: 267, format: 'webp' });
    expect(result.size).toBe(result.bytes.length);
    expect(await imageInfo(result.bytes)).toMatchObject({ format: 'webp', mimeType: 'image/webp', width: 400, height: 267 });
  });

  it('fits by whichever side binds, keeping the aspect ratio', async () => {
    const result = await resizeImage(await solidPng(800, 1200), { maxWidth: 400, maxHeight: 300, format: 'png' });
    expect(result).toMatchObject({ width: 200, height: 300, format: 'png' });
    expect((await imageInfo(result.bytes)).format).toBe('png');
  });

  it('never enlarges a small image', async () => {
    const result = await resizeImage(await solidPng(120, 80), { maxWidth: 400, maxHeight: 400, format: 'jpeg' });
    expect(result).toMatchObject({ width: 120, height: 80, format: 'jpeg' });
    expect((await imageInfo(result.bytes)).format).toBe('jpeg');
  });

  it('makes transparency white in JPEG', async () => {
    const result = await resizeImage(await solidPng(10, 10, 0), { maxWidth: 10, maxHeight: 10, format: 'jpeg' });
    const { data } = await sharp(result.bytes).raw().toBuffer({ resolveWithObject: true });
    expect(Math.min(...data)).toBeGreaterThan(245);
  });

  it('applies EXIF orientation, so width and height are as the photo is seen', async () => {
    const sideways = await sharp({ create: { width: 300, height: 100, channels: 3, background: '#336699' } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    expect(await imageInfo(sideways)).toMatchObject({ width: 100, height: 300 });
    expect(await resizeImage(sideways, { maxWidth: 1000, maxHeight: 150, format: 'webp' })).toMatchObject({ width: 50, height: 150 });
  });

  it('reads a stream, and refuses one longer than the byte limit', async () => {
    const png = await solidPng(600, 600);
    expect(await resizeImage(body(png, { chunk: 1000 }), { maxWidth: 300, maxHeight: 300, format: 'webp' })).toMatchObject({ width: 300, height: 300 });
    await refusal(resizeImage(body(png, { chunk: 1000 }), { maxWidth: 300, maxHeight: 300, format: 'webp', maxInputBytes: png.length - 1 }), 'too_large');
    await expect(resizeImage(body(png, { failAfter: 1000 }), { maxWidth: 300, maxHeight: 300, format: 'webp' })).rejects.toThrow('the client went away');
  });

  it('refuses a text file, saying which images it reads', async () => {
    const error = await refusal(resizeImage(Buffer.from('just some text, not an image\n'), { maxWidth: 100, maxHeight: 100, format: 'webp' }), 'unsupported_media_type');
    expect(error.message).toContain('not an image');
    expect(error.message).toContain('png');
    await refusal(imageInfo(Buffer.from('%PDF-1.4\n')), 'unsupported_media_type');
    const empty = await refusal(resizeImage(Readable.from([Buffer.alloc(0)]), { maxWidth: 100, maxHeight: 100, format: 'png' }), 'invalid_argument');
    expect(empty.message).toContain('empty');
  });

  it('refuses SVG, which is a document rather than pixels', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
    const error = await refusal(resizeImage(svg, { maxWidth: 100, maxHeight: 100, format: 'png' }), 'unsupported_media_type');
    expect(error.message).toContain('svg');
  });

  it('refuses a pixel bomb from its header alone, quickly', async () => {
    const bomb = pixelBomb(100_000, 100_000);
    expect(bomb.length).toBeLessThan(200);
    expect(await imageInfo(bomb)).toMatchObject({ format: 'png', width: 100_000, height: 100_000 });

    const started = performance.now();
    const error = await refusal(resizeImage(bomb, { maxWidth: 400, maxHeight: 400, format: 'webp' }), 'too_large');
    expect(performance.now() - started).toBeLessThan(1000);
    expect(error.message).toContain('100000×100000');
    // A lower limit applies too.
    await refusal(resizeImage(await solidPng(1200, 800), { maxWidth: 400, maxHeight: 400, format: 'webp', maxInputPixels: 500_000 }), 'too_large');
  });

  it('rejects sizes, formats and qualities that make no sense', async () => {
    const png = await solidPng(10, 10);
    await refusal(resizeImage(png, { maxWidth: 0, maxHeight: 10, format: 'png' }), 'invalid_argument');
    await refusal(resizeImage(png, { maxWidth: 10, maxHeight: 10, format: 'gif' as 'png' }), 'invalid_argument');
    await refusal(resizeImage(png, { maxWidth: 10, maxHeight: 10, format: 'webp', quality: 101 }), 'invalid_argument');
  });
});
