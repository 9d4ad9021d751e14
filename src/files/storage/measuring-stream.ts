/** Counts and hashes what passes through, and fails the stream once it passes the limit. */
import { createHash } from 'node:crypto';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ExaiError } from '../../errors.js';

export class MeasuringStream extends Transform {
  private readonly hash = createHash('sha256');
  size = 0;

  constructor(private readonly maxBytes: number) {
    super();
  }

  /** Hashes and counts a body that is not kept (its object already exists). */
  static async drain(body: Readable, maxBytes: number): Promise<MeasuringStream> {
    const measure = new MeasuringStream(maxBytes);
    await pipeline(body, measure, new Writable({ write: (_chunk, _encoding, callback) => callback() }));
    return measure;
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
