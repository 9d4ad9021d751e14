/**
 * Turns a request's credentials into a Principal, or refuses with a reason the
 * client can act on. API keys are checked against the database through a cache
 * of at most half a second, so a revocation reaches every instance within 1 s.
 * Failures are audited and counted per client address; an address with too many
 * is locked out for the rest of the minute before any credential is checked.
 */
import { isIP } from 'node:net';
import { LRUCache } from 'lru-cache';
import type { Config } from '../config.js';
import { appendAudit } from '../audit/audit-log.js';
import type { Database } from '../db/types.js';
import type { Logger } from '../logger.js';
import type { RateLimits } from '../limits/rate-limits.js';
import type { User } from '../users/users.js';
import { ensureUserWithId } from '../users/users.js';
import { findKeyForAuth, type StoredKey } from './api-keys.js';
import { hashMatches, keyPrefix, looksLikeApiKey } from './api-key-format.js';
import { JwtVerifier, KeySetUnavailable, TokenRejected } from './jwt.js';
import { bearerCredential, sameSecret } from './bearer.js';
import { allScopes, type Scope } from './scopes.js';
import { localPrincipal, type Principal } from './principal.js';

/** A refused request: 401 (bad or missing credentials), 429 (locked out) or 503 (tokens cannot be checked now). */
export class AuthFailure extends Error {
  constructor(
    readonly status: 401 | 429 | 503,
    /** RFC 6750 error code for WWW-Authenticate; undefined when no credentials were sent. */
    readonly bearerError: 'invalid_request' | 'invalid_token' | undefined,
    message: string,
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

export interface AuthRequest {
  authorization: string | undefined;
  /** The client's address: failures are counted per address. */
  source: string;
  /** Whether the client connects over loopback (the owner token is accepted only then). */
  loopback: boolean;
  /** With the owner token: the handle to act as (the local user when absent). */
  actAs?: string | undefined;
}

export interface AuthenticatorOptions {
  config: Config;
  db: Database;
  logger: Logger;
  limits: RateLimits;
  localUser: User;
  /** The embedded owner's token, which local clients (the stdio relay) present. */
  ownerToken?: string | undefined;
  /** The id of the user with this handle, created when missing; the local user when none is named. */
  ensureUserId(handle: string | undefined): Promise<string>;
}

/** How long a key's row may be reused: the bound on how late a revocation takes effect. */
const keyCacheTtlMs = 500;
const maxHeaderLength = 8192;

export class Authenticator {
  private readonly jwt: JwtVerifier;
  private readonly keys = new LRUCache<string, { key: StoredKey | null }>({ max: 10_000, ttl: keyCacheTtlMs });
  // Short-lived, so a user deleted by an operator is recreated (from a still-valid token) promptly.
  private readonly knownUsers = new LRUCache<string, true>({ max: 10_000, ttl: 10_000 });
  // The relay sends every MCP message with the owner token: its user is looked up once, not per message.
  private readonly ownerUsers = new LRUCache<string, string>({ max: 1_000, ttl: 10_000 });

  constructor(private readonly options: AuthenticatorOptions) {
    this.jwt = new JwtVerifier(options.config.auth);
  }

  /** The principal for a request; throws AuthFailure. */
  async authenticate(request: AuthRequest): Promise<Principal> {
    const { config, localUser } = this.options;
    if (config.auth.mode === 'local') return localPrincipal(localUser);
    // The local operator's relay is never locked out by other clients' failures.
    const owner = await this.ownerPrincipal(request);
    if (owner !== undefined) return owner;
    const lockout = await this.options.limits.authLockedOut(failureKey(request.source), config.auth.failuresPerMinute);
    if (lockout.limited) {
      throw new AuthFailure(429, undefined, `Too many failed authentications from this address; retry after ${lockout.retryAfterS} s.`, lockout.retryAfterS);
    }
    try {
      return await this.check(request);
    } catch (error) {
      // No credentials at all is a client discovering that it must log in, and an unreachable key
      // set is the server's problem: neither is a guess.
      if (error instanceof AuthFailure && error.bearerError !== undefined && error.status === 401) await this.noteFailure(request, error);
      throw error;
    }
  }

  private async check(request: AuthRequest): Promise<Principal> {
    const header = request.authorization;
    if (header === undefined || header === '') {
      throw new AuthFailure(401, undefined, 'Authentication required: send `Authorization: Bearer <exai API key or JWT>`. Create a key with `exai keys create --user <handle>`.');
    }
    if (header.length > maxHeaderLength) throw new AuthFailure(401, 'invalid_request', 'The Authorization header is too long.');
    const credential = bearerCredential(header);
    if (credential === undefined) throw new AuthFailure(401, 'invalid_request', 'Malformed Authorization header: expected `Bearer <token>` with one token and no other text.');
    // The owner token from anywhere but loopback is just a wrong token.
    if (this.isOwnerToken(credential)) throw new AuthFailure(401, 'invalid_token', 'The API key or token is not valid.');
    if (looksLikeApiKey(credential)) return this.checkKey(credential);
    if (!this.jwt.enabled) {
      throw new AuthFailure(401, 'invalid_token', 'The bearer value is not an exai API key, and this server accepts no JWTs (set EXAI_JWT_SECRET or EXAI_JWKS_URL to accept them).');
    }
    try {
      const token = await this.jwt.verify(credential);
      await this.ensureTokenUser(token.userId, request.source);
      return { userId: token.userId, label: token.label, method: 'jwt', scopes: new Set<Scope>(token.scopes) };
    } catch (error) {
      if (error instanceof TokenRejected) throw new AuthFailure(401, 'invalid_token', error.message);
      if (error instanceof KeySetUnavailable) throw new AuthFailure(503, 'invalid_token', error.message, 5);
      throw error;
    }
  }

  /** The embedded owner's operator: the owner token, from loopback, acting as the named (or local) user. */
  private async ownerPrincipal(request: AuthRequest): Promise<Principal | undefined> {
    const credential = bearerCredential(request.authorization);
    if (!request.loopback || credential === undefined || !this.isOwnerToken(credential)) return undefined;
    // As `exai stdio` serving directly would: the operator's EXAI_USER exists once used.
    const handle = request.actAs ?? '';
    let userId = this.ownerUsers.get(handle);
    if (userId === undefined) {
      userId = await this.options.ensureUserId(request.actAs);
      this.ownerUsers.set(handle, userId);
    }
    return { userId, label: request.actAs ?? this.options.localUser.handle, method: 'owner', scopes: new Set(allScopes) };
  }

  private isOwnerToken(credential: string): boolean {
    const owner = this.options.ownerToken;
    return owner !== undefined && sameSecret(credential, owner);
  }

  private async checkKey(credential: string): Promise<Principal> {
    const prefix = keyPrefix(credential);
    // One message for unknown, wrong and malformed keys: nothing to learn by probing.
    const invalid = () => new AuthFailure(401, 'invalid_token', 'The API key is not valid.');
    if (prefix === undefined) throw invalid();
    let cached = this.keys.get(prefix);
    if (cached === undefined) {
      cached = { key: (await findKeyForAuth(this.options.db, prefix)) ?? null };
      this.keys.set(prefix, cached);
    }
    const key = cached.key;
    if (key === null || !hashMatches(credential, key.secretHash)) throw invalid();
    if (key.revokedAt !== null) throw new AuthFailure(401, 'invalid_token', 'The API key has been revoked.');
    if (key.expiresAt !== null && key.expiresAt.getTime() <= Date.now()) {
      throw new AuthFailure(401, 'invalid_token', 'The API key has expired; create a new one with `exai keys create` or `exai keys rotate`.');
    }
    const limits: Principal['limits'] = {};
    if (key.limits.requestsPerMinute !== null) limits.requestsPerMinute = key.limits.requestsPerMinute;
    if (key.limits.tokensPerMinute !== null) limits.tokensPerMinute = key.limits.tokensPerMinute;
    if (key.limits.concurrentCalls !== null) limits.concurrentCalls = key.limits.concurrentCalls;
    return { userId: key.userId, label: `${key.userHandle} (key ${prefix})`, method: 'api_key', scopes: new Set(key.scopes), keyId: key.id, limits };
  }

  /** A token's subject becomes a user on first sight (Supabase users exist in auth.users, not here). */
  private async ensureTokenUser(userId: string, source: string): Promise<void> {
    if (this.knownUsers.has(userId)) return;
    const created = await ensureUserWithId(this.options.db, userId);
    if (created) {
      await appendAudit(this.options.db, { userId, label: `jwt:${userId}`, source }, { action: 'user.create', target: `user:${userId}`, outcome: 'success', details: { via: 'jwt' } });
    }
    this.knownUsers.set(userId, true);
  }

  private async noteFailure(request: AuthRequest, failure: AuthFailure): Promise<void> {
    const { config, db, logger, limits } = this.options;
    const credential = bearerCredential(request.authorization);
    const prefix = credential === undefined ? undefined : keyPrefix(credential);
    const label = prefix !== undefined ? `key ${prefix}` : credential === undefined ? 'malformed header' : 'bearer token';
    try {
      const limit = config.auth.failuresPerMinute;
      const count = await limits.noteAuthFailure(failureKey(request.source), limit);
      // The first failure of an address in a window, and the one that locks it out: a loop of bad
      // keys writes two rows a minute, not one per guess, to a log that can never be pruned.
      if (count.count !== 1 && count.count !== limit) return;
      await appendAudit(db, { label, source: request.source }, {
        action: count.limited ? 'auth.locked_out' : 'auth.failure',
        outcome: count.limited ? 'denied' : 'failure',
        details: { reason: failure.message, failures_this_minute: count.count },
      });
    } catch (error) {
      logger.warn({ err: (error as Error).message }, 'could not record a failed authentication');
    }
  }
}

/**
 * What failures are counted against: the address, or for IPv6 its /64, since one
 * client commonly holds a whole /64 and could otherwise take a fresh address per guess.
 */
export function failureKey(source: string): string {
  if (isIP(source) !== 6 || /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(source)) return source;
  const [head = '', tail = ''] = source.toLowerCase().split('::');
  const front = head === '' ? [] : head.split(':');
  const back = source.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const groups = source.includes('::') ? [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back] : front;
  return `${groups.slice(0, 4).map((group) => group.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
