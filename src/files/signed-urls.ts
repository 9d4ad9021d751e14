/**
 * Signed download URLs: a token that names a file, its owner and an expiry,
 * with an HMAC-SHA256 over them. Anyone holding the URL may download that one
 * file until it expires, with no other credential (for browsers, curl, or a
 * provider fetching a document). The secret is EXAI_URL_SIGNING_SECRET, or one
 * made once and kept in the database so every instance shares it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { asService, isUuid } from '../db/session.js';
import type { Database } from '../db/types.js';
import { ExaiError } from '../errors.js';

export interface SignedTarget {
  fileId: string;
  userId: string;
  /** Unix seconds. */
  expiresAt: number;
}

const secretName = 'files.url_signing';

/** The configured secret, or the database's (made by the first instance that needs it). */
export async function urlSigningSecret(db: Database, configured: string | undefined): Promise<string> {
  if (configured !== undefined) return configured;
  return asService(db, async (tx) => {
    await tx.query('INSERT INTO exai.server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [secretName, randomBytes(32).toString('base64url')]);
    const found = await tx.query<{ value: string }>('SELECT value FROM exai.server_secrets WHERE name = $1', [secretName]);
    return found.rows[0]!.value;
  });
}

export class UrlSigner {
  constructor(private readonly secret: string) {}

  sign(target: SignedTarget): string {
    const payload = `${target.fileId.toLowerCase()}.${target.userId.toLowerCase()}.${target.expiresAt}`;
    return `${Buffer.from(payload).toString('base64url')}.${this.mac(payload)}`;
  }

  /** The target of a valid, unexpired token; one error for every bad token, so nothing is learned by probing. */
  verify(token: string, now = Date.now()): SignedTarget {
    const refused = new ExaiError('forbidden', 'This download link is invalid or has expired; ask for a new one (POST /api/v1/files/{id}/signed-url).');
    const [encoded, mac, extra] = token.split('.');
    if (encoded === undefined || mac === undefined || extra !== undefined || encoded.length > 400) throw refused;
    const payload = Buffer.from(encoded, 'base64url').toString('utf8');
    const expected = Buffer.from(this.mac(payload));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw refused;
    const [fileId, userId, expires] = payload.split('.');
    const expiresAt = Number(expires);
    if (fileId === undefined || userId === undefined || !isUuid(fileId) || !isUuid(userId) || !Number.isInteger(expiresAt)) throw refused;
    if (expiresAt * 1000 <= now) throw refused;
    return { fileId, userId, expiresAt };
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url');
  }
}
