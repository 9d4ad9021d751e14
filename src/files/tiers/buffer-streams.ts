/** Between whole buffers and streams, for the small objects the memory tier holds. */
import { Readable } from 'node:stream';

/** A byte stream (not object mode, as a file stream would be) over `bytes`. */
export function bufferStream(bytes: Buffer): Readable {
  return new Readable({
    read() {
      if (bytes.length > 0) this.push(bytes);
      this.push(null);
    },
  });
}

/** All of a stream's bytes; only for objects known to be small. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
