/**
 * The shape of an API key: `exai_<prefix>_<secret>`. The prefix (12 lower-case
 * letters and digits) is stored and finds the row; the secret (256 random bits)
 * is never stored, only a SHA-256 of the whole key.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const keyPattern = /^exai_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;
const prefixAlphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';

export interface NewKeyMaterial {
  key: string;
  prefix: string;
  hash: string;
}

export function generateKey(): NewKeyMaterial {
  const bytes = randomBytes(12);
  const prefix = [...bytes].map((byte) => prefixAlphabet[byte % prefixAlphabet.length]).join('');
  const key = `exai_${prefix}_${randomBytes(32).toString('base64url')}`;
  return { key, prefix, hash: hashKey(key) };
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** The prefix of a well-formed key, or undefined. */
export function keyPrefix(text: string): string | undefined {
  return keyPattern.exec(text)?.[1];
}

export function looksLikeApiKey(text: string): boolean {
  return text.startsWith('exai_');
}

export function hashMatches(key: string, storedHash: string): boolean {
  const given = Buffer.from(hashKey(key), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return given.length === stored.length && timingSafeEqual(given, stored);
}
