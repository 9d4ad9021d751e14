/**
 * Bearer JWTs (jose): HS256 with EXAI_JWT_SECRET, RS256/ES256 from the key set
 * at EXAI_JWKS_URL. `sub` is the user's id; issuer and audience are checked
 * when configured. Supabase Auth access tokens (HS256 with the project's JWT
 * secret, or ES256/RS256 from its JWKS) work as they are.
 */
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Config } from '../config.js';
import { isUuid } from '../db/session.js';
import { isScope, type Scope } from './scopes.js';

export interface VerifiedToken {
  userId: string;
  scopes: Scope[];
  /** Shown in logs and the audit log instead of the token. */
  label: string;
}

/** Why a token was refused, in words a client developer can act on. */
export class TokenRejected extends Error {}

/** The token could not be checked at all (the key set is unreachable): the server's problem, not the caller's. */
export class KeySetUnavailable extends Error {}

const asymmetric = ['RS256', 'ES256'] as const;

export class JwtVerifier {
  private readonly secret: Uint8Array | undefined;
  private readonly keySet: JWTVerifyGetKey | undefined;

  constructor(private readonly settings: Config['auth']) {
    this.secret = settings.jwtSecret === undefined ? undefined : new TextEncoder().encode(settings.jwtSecret);
    this.keySet = settings.jwksUrl === undefined ? undefined : createRemoteJWKSet(new URL(settings.jwksUrl), { timeoutDuration: 5_000 });
  }

  get enabled(): boolean {
    return this.secret !== undefined || this.keySet !== undefined;
  }

  async verify(token: string): Promise<VerifiedToken> {
    let algorithm: string | undefined;
    try {
      algorithm = decodeProtectedHeader(token).alg;
    } catch {
      throw new TokenRejected('The bearer token is neither an exai API key nor a well-formed JWT.');
    }
    const options = {
      ...(this.settings.jwtIssuer === undefined ? {} : { issuer: this.settings.jwtIssuer }),
      ...(this.settings.jwtAudience === undefined ? {} : { audience: this.settings.jwtAudience }),
      requiredClaims: ['sub', 'exp'],
      clockTolerance: 5,
    };
    let payload: JWTPayload;
    try {
      if (algorithm === 'HS256' && this.secret !== undefined) {
        payload = (await jwtVerify(token, this.secret, { ...options, algorithms: ['HS256'] })).payload;
      } else if ((asymmetric as readonly string[]).includes(algorithm ?? '') && this.keySet !== undefined) {
        payload = (await jwtVerify(token, this.keySet, { ...options, algorithms: [...asymmetric] })).payload;
      } else {
        const accepted = [this.secret ? 'HS256' : undefined, ...(this.keySet ? asymmetric : [])].filter(Boolean).join(', ');
        throw new TokenRejected(`The token's algorithm ${JSON.stringify(algorithm ?? 'none')} is not accepted; this server accepts ${accepted || 'no JWTs'}.`);
      }
    } catch (error) {
      if (error instanceof TokenRejected) throw error;
      if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid || !(error instanceof errors.JOSEError)) {
        throw new KeySetUnavailable('The token could not be checked: the key set at EXAI_JWKS_URL could not be fetched or read. Try again shortly.');
      }
      throw new TokenRejected(describeJoseError(error));
    }
    const subject = payload.sub ?? '';
    if (!isUuid(subject)) throw new TokenRejected('The token\u2019s `sub` claim must be the user\u2019s id, a uuid.');
    // A token never grants admin: that is given by the operator, through keys.
    const scopes = (scopesOf(payload) ?? [...this.settings.jwtDefaultScopes]).filter((scope) => scope !== 'admin');
    return { userId: subject.toLowerCase(), scopes, label: `jwt:${subject.toLowerCase()}` };
  }
}

/** `scope` as a space-separated string (OAuth) or `scp`/`scopes` as an array; unknown names are ignored. */
function scopesOf(payload: JWTPayload): Scope[] | undefined {
  const raw = payload.scope ?? payload.scp ?? payload.scopes;
  if (raw === undefined) return undefined;
  const names = typeof raw === 'string' ? raw.split(/\s+/) : Array.isArray(raw) ? raw.map(String) : [];
  return names.filter(isScope);
}

function describeJoseError(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'The token has expired; get a new one.';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return 'The token is not valid yet (its `nbf` is in the future).';
    if (error.claim === 'aud') return 'The token is for another audience (`aud` does not match EXAI_JWT_AUDIENCE).';
    if (error.claim === 'iss') return 'The token is from another issuer (`iss` does not match EXAI_JWT_ISSUER).';
    return `The token's \`${error.claim}\` claim is missing or invalid.`;
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'The token\u2019s signature does not verify.';
  if (error instanceof errors.JWKSNoMatchingKey) return 'No key in the JWKS matches the token\u2019s `kid`.';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'The token\u2019s algorithm is not accepted.';
  return 'The token is malformed or invalid.';
}
