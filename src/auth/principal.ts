/** Who a request acts for, as established by authentication. Passed along explicitly, never global. */
import type { LimitSettings } from '../limits/types.js';
import { allScopes, type Scope } from './scopes.js';

export type AuthMethod = 'api_key' | 'jwt' | 'local' | 'owner';

export interface Principal {
  userId: string;
  /** For logs and the audit log: a handle, a key prefix or a token subject, never a secret. */
  label: string;
  method: AuthMethod;
  scopes: ReadonlySet<Scope>;
  /** The key used, when it was a key: limits are counted per key. */
  keyId?: string;
  /** Limits that override the server's defaults for this credential. */
  limits?: Partial<LimitSettings>;
}

/** The subject rate limits are counted against: the key when there is one, else the user. */
export function limitSubject(principal: Principal): string {
  return principal.keyId === undefined ? `user:${principal.userId}` : `key:${principal.keyId}`;
}

export function hasScope(principal: Principal, scope: Scope): boolean {
  return principal.scopes.has(scope) || principal.scopes.has('admin');
}

/** The operator's own user, for stdio and local mode: every scope. */
export function localPrincipal(user: { id: string; handle: string }): Principal {
  return { userId: user.id, label: user.handle, method: 'local', scopes: new Set(allScopes) };
}
