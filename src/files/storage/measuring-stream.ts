/** Counts and hashes what passes through, and fails the stream once it passes the limit. */
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { ExaiError } from '../../errors.js';

export class MeasuringStream extends Transform {
  private readonly hash = createHash('sha256');
  size = 0;

  constructor(private readonly maxBytes: number) {
    super();
  }

  /** Hashes and counts a body that is not kept (its object already exists): read directly, with no stream in between. */
  static async drain(body: Readable, maxBytes: number): Promise<{ size: number; sha256: () => string }> {
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        body.destroy();
        throw new ExaiError('too_large', `The file is larger than the limit of ${maxBytes} bytes; nothing was stored.`);
      }
      hash.update(chunk as Buffer);
    }
    return { size, sha256: () => hash.digest('hex') };
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
