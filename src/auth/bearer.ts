/** Reading `Authorization: Bearer …` and comparing secrets without a timing oracle. */
import { timingSafeEqual } from 'node:crypto';

/** The token of a well-formed bearer header (the scheme in any case, RFC 9110), else undefined. */
export function bearerCredential(header: string | undefined): string | undefined {
  return /^Bearer ([A-Za-z0-9._~+/=-]+)$/i.exec(header ?? '')?.[1];
}

export function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
