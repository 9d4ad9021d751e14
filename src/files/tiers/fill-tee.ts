/**
 * The caller's stream for an object read from the primary store, feeding the
 * caches on the way: each chunk goes to the caller at once and to `side` (the
 * disk tier's fill), and a small object is kept whole for the memory tier.
 *
 * The read only ever waits for the side's write backpressure. A side that fails
 * is dropped and the read goes on; a read that stops before the end (error or
 * the caller destroying it) destroys the side, so the fill leaves nothing.
 */
import { Transform, type TransformCallback, type Writable } from 'node:stream';

export interface FillTeeOptions {
  side: Writable | undefined;
  /** Keep the bytes for `onWhole` while they are at most this many; undefined keeps nothing. */
  keepUpTo: number | undefined;
  /** Called with every byte once the source has ended, when they were kept. */
  onWhole: (bytes: Buffer) => void;
}

export class FillTee extends Transform {
  private readonly side: Writable | undefined;
  private kept: Buffer[] | undefined;
  private keptBytes = 0;
  private flushed = false;

  constructor(private readonly options: FillTeeOptions) {
    super();
    this.side = options.side;
    // The fill reports the side's failure; here it must only not go unhandled.
    this.side?.on('error', () => undefined);
    this.kept = options.keepUpTo === undefined ? undefined : [];
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.push(chunk);
    this.keep(chunk);
    const side = this.side;
    if (side === undefined || side.destroyed || side.writableEnded || side.write(chunk)) {
      callback();
      return;
    }
    // A side destroyed while full never drains, but it closes.
    const resume = () => {
      side.off('drain', resume);
      side.off('close', resume);
      callback();
    };
    side.on('drain', resume);
    side.on('close', resume);
  }

  override _flush(callback: TransformCallback): void {
    this.flushed = true;
    if (this.side !== undefined && !this.side.destroyed) this.side.end();
    if (this.kept !== undefined) this.options.onWhole(Buffer.concat(this.kept, this.keptBytes));
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.flushed) {
      this.kept = undefined;
      this.side?.destroy(error ?? new Error('The read stopped before the end of the object; nothing was cached.'));
    }
    callback(error);
  }

  private keep(chunk: Buffer): void {
    if (this.kept === undefined) return;
    this.keptBytes += chunk.length;
    if (this.keptBytes > (this.options.keepUpTo ?? 0)) this.kept = undefined;
    else this.kept.push(chunk);
  }
}
