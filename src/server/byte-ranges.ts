/**
 * One HTTP byte range (RFC 9110 §14): `bytes=a-b`, `bytes=a-`, `bytes=-n`.
 * Several ranges, and other units, are answered with the whole file (as the
 * RFC allows and requires), a range past the end with 416.
 */
import { ExaiError } from '../errors.js';
import type { ByteRange } from '../files/storage/object-store.js';

export type RangeAnswer = { kind: 'whole' } | { kind: 'partial'; range: Required<ByteRange> } | { kind: 'unsatisfiable' };

export function parseRange(header: string | undefined, size: number): RangeAnswer {
  if (header === undefined || header.trim() === '') return { kind: 'whole' };
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null) {
    // Other units, and several ranges, are ignored as RFC 9110 says: the whole file is sent.
    if (!/^bytes=/i.test(header.trim()) || /^bytes=[\d\s,-]+$/.test(header.trim())) return { kind: 'whole' };
    throw new ExaiError('invalid_argument', `The Range header ${JSON.stringify(header.slice(0, 100))} is not a byte range; send e.g. "bytes=0-1023".`);
  }
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') throw new ExaiError('invalid_argument', 'A byte range needs a start or a suffix length, e.g. "bytes=0-1023" or "bytes=-500".');
  if (size === 0) return { kind: 'unsatisfiable' };
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', range: { start: Math.max(0, size - suffix), end: size - 1 } };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || (last !== '' && Number(last) < start)) return { kind: 'unsatisfiable' };
  return { kind: 'partial', range: { start, end } };
}
