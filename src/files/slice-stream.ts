/** Passes on only bytes `start` to `end` (inclusive) of what flows through: ranges of files kept compressed. */
import { Transform } from 'node:stream';

export function sliceStream(start: number, end: number): Transform {
  let offset = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      const from = Math.max(start - offset, 0);
      const to = Math.min(end + 1 - offset, chunk.length);
      offset += chunk.length;
      callback(null, to > from ? chunk.subarray(from, to) : undefined);
    },
  });
}
