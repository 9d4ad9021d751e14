/**
 * Gzip for large text at rest: text compresses several times over, so it is
 * stored gzipped and inflated on read. Inflation is bounded, because a stored
 * gzip stream (or one a client sends) can expand a thousandfold.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { createGunzip, createGzip, type Gunzip } from 'node:zlib';
import { ExaiError } from '../../errors.js';
import { isTextMimeType } from './mime-types.js';

/** Below this, gzip saves too little to be worth a transform on every read. */
export const GZIP_MIN_BYTES = 64 * 1024;

/** zlib's default: most of level 9's ratio at a fraction of its CPU. */
const GZIP_LEVEL = 6;

/** Gzips what passes through. */
export function gzipStream(): Transform {
  return createGzip({ level: GZIP_LEVEL });
}

/**
 * Gunzips what passes through, failing with too_large as soon as the output
 * passes `maxBytes`. The inflater runs under backpressure, so a gzip bomb is
 * refused after about `maxBytes` of output, not after inflating all of it.
 * Data that is not gzip, or is cut short, fails with invalid_argument.
 */
export function gunzipLimited(maxBytes: number): Transform {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw new ExaiError('invalid_argument', `gunzipLimited needs a byte limit that is a whole number ≥ 0, not ${maxBytes}.`);
  }
  return new LimitedGunzip(maxBytes);
}

class LimitedGunzip extends Transform {
  private readonly inflater: Gunzip = createGunzip();
  private emitted = 0;
  private finish: TransformCallback | undefined;

  constructor(private readonly maxBytes: number) {
    super();
    this.inflater.on('data', (chunk: Buffer) => this.forward(chunk));
    this.inflater.on('end', () => this.finish?.());
    this.inflater.on('error', (error: Error) => {
      this.destroy(new ExaiError('invalid_argument', `The data is not valid gzip (${error.message}).`, { cause: error }));
    });
  }

  private forward(chunk: Buffer): void {
    if (this.destroyed) return;
    this.emitted += chunk.length;
    if (this.emitted > this.maxBytes) {
      // Stop the inflater first: it must not produce another chunk.
      this.inflater.destroy();
      this.destroy(
        new ExaiError('too_large', `The data inflates to more than the limit of ${this.maxBytes} bytes; it was not read further.`, {
          details: { maxBytes: this.maxBytes },
        }),
      );
      return;
    }
    // Our reader is full: hold the inflater until it asks for more (see _read).
    if (!this.push(chunk)) this.inflater.pause();
  }

  override _read(size: number): void {
    this.inflater.resume();
    super._read(size);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    // Take the next input only once the inflater has consumed this one; on error, 'error' above ends us.
    this.inflater.write(chunk, (error) => {
      if (!error) callback();
    });
  }

  override _flush(callback: TransformCallback): void {
    this.finish = callback;
    this.inflater.end();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.inflater.destroy();
    callback(error);
  }
}

/** Whether a file of this type and size is worth storing gzipped. Compressed formats (zip, images, PDF…) never are. */
export function shouldGzip(mimeType: string, size: number): boolean {
  return size >= GZIP_MIN_BYTES && isTextMimeType(mimeType);
}

/** Whether the bytes start like a gzip member (magic 1f 8b, method deflate). */
export function isGzipBytes(head: Buffer): boolean {
  return head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08;
}
