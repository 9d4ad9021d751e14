/**
 * Passes bytes through while checking them against the key they will be cached
 * under: exactly `size` bytes whose SHA-256 is the key's. A cache file is kept
 * for good, so a truncated or wrong body must never become one.
 */
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

export class VerifyingStream extends Transform {
  private readonly hash = createHash('sha256');
  private seen = 0;

  constructor(
    private readonly sha256: string,
    private readonly size: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.size) {
      callback(new Error(`The object has more than the expected ${this.size} bytes.`));
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.seen !== this.size) callback(new Error(`The object ended after ${this.seen} of the expected ${this.size} bytes.`));
    else if (this.hash.digest('hex') !== this.sha256) callback(new Error('The object does not match the SHA-256 of its key.'));
    else callback();
  }
}
