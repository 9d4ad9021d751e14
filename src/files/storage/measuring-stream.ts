/** Counts and hashes what passes through, and fails the stream once it passes the limit. */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { ExaiError } from '../../errors.js';

export class MeasuringStream extends Transform {
  private readonly hash = createHash('sha256');
  size = 0;

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      callback(new ExaiError('too_large', `The file is larger than the limit of ${this.maxBytes} bytes; nothing was stored.`));
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }

  /** The SHA-256 of everything that passed, in hex; once the stream has ended. */
  sha256(): string {
    return this.hash.digest('hex');
  }
}
