/** What a credential may do. Keys carry an explicit list; tokens carry theirs in `scope`. */
import { ExaiError } from '../errors.js';

export const allScopes = ['tools:call', 'conversations:read', 'conversations:write', 'files:write', 'metrics:read', 'metrics:scrape', 'admin'] as const;

export type Scope = (typeof allScopes)[number];

/**
 * What a new key gets when no scopes are named: everything but administration
 * and `metrics:scrape`, whose Prometheus counters add up every user's calls.
 */
export const defaultUserScopes: readonly Scope[] = allScopes.filter((scope) => scope !== 'admin' && scope !== 'metrics:scrape');

export function isScope(text: string): text is Scope {
  return (allScopes as readonly string[]).includes(text);
}

/** The names in a comma- or space-separated scope list, and those of them that are no scope. */
export function splitScopes(text: string): { names: string[]; unknown: string[] } {
  const names = text.split(/[\s,]+/).filter((name) => name !== '');
  return { names, unknown: names.filter((name) => !isScope(name)) };
}

/** Parses a comma- or space-separated scope list, refusing unknown names. */
export function parseScopes(text: string): Scope[] {
  const { names, unknown } = splitScopes(text);
  if (unknown.length > 0) {
    throw new ExaiError('invalid_argument', `Unknown scope ${unknown.map((name) => JSON.stringify(name)).join(', ')}; the scopes are ${allScopes.join(', ')}.`);
  }
  if (names.length === 0) throw new ExaiError('invalid_argument', `Name at least one scope: ${allScopes.join(', ')}.`);
  return [...new Set(names as Scope[])];
}
