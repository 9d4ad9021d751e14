/** Parsers for command-line option values, each refusing bad input with the option's name. */
import { ExaiError } from '../errors.js';

/** `--limit <n>`: a whole number from 1 to `max`. */
export function limitOption(max: number): (text: string) => number {
  return (text) => {
    const limit = Number(text);
    if (!Number.isInteger(limit) || limit < 1 || limit > max) {
      throw new ExaiError('invalid_argument', `--limit must be a whole number from 1 to ${max} (got ${JSON.stringify(text)}).`);
    }
    return limit;
  };
}
