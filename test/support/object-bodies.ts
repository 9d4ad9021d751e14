/** Request bodies as streams (in chunks, optionally failing midway), and reading streams back, for the object-store suites. */
import { Readable } from 'node:stream';
import { expect } from 'vitest';
import { expectExaiError } from './assertions.js';

export async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** `bytes` in chunks of `chunk`, failing after `failAfter` bytes as a dropped upload would. */
export function body(bytes: Buffer, options: { chunk?: number; failAfter?: number } = {}): Readable {
  const size = options.chunk ?? 64 * 1024;
  let offset = 0;
  return new Readable({
    read() {
      if (options.failAfter !== undefined && offset >= options.failAfter) {
        this.destroy(new Error('the client went away'));
        return;
      }
      if (offset >= bytes.length) {
        this.push(null);
        return;
      }
      this.push(bytes.subarray(offset, offset + size));
      offset += size;
    },
  });
}

/** The ExaiError the promise rejects with, checked to carry `code`. */
export async function refusal(promise: Promise<unknown>, code: string) {
  const error = await expectExaiError(promise);
  expect(error.code).toBe(code);
  return error;
}
