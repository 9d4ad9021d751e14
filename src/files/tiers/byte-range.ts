/** One check of a requested range against an object's size, so every tier refuses the same ranges the primary store does. */
import { ExaiError } from '../../errors.js';
import type { ByteRange } from '../storage/object-store.js';

/** Inclusive bounds of `range` within `size` bytes; invalid_argument when it falls outside. */
export function resolveRange(range: ByteRange, size: number): { start: number; end: number } {
  const end = range.end ?? size - 1;
  if (!Number.isInteger(range.start) || range.start < 0 || !Number.isInteger(end) || end < range.start || end >= size) {
    throw new ExaiError('invalid_argument', `The range ${range.start}-${range.end ?? ''} is outside the object's ${size} bytes.`);
  }
  return { start: range.start, end };
}
