/**
 * Transactions that run as a user or as the service. Session state is only
 * ever set transaction-locally (`set_config(..., true)`), so nothing leaks to
 * the next user of a pooled connection and transaction-mode poolers work.
 */
import { randomBytes } from 'node:crypto';
import { ExaiError } from '../errors.js';
import type { Database, Queryable } from './types.js';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(text: string): boolean {
  return uuidPattern.test(text);
}

/** The JWT claims a user request runs with; `auth.uid()` reads `sub`. */
export function userClaims(userId: string): string {
  if (!isUuid(userId)) throw new ExaiError('invalid_argument', `User id ${JSON.stringify(userId)} is not a uuid.`);
  return JSON.stringify({ sub: userId.toLowerCase(), role: 'authenticated' });
}

const becomeUserSql = "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)";

/** Runs `fn` in a transaction as role `authenticated` with the user's claims. */
export function asUser<T>(db: Database, userId: string, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  const claims = userClaims(userId);
  return db.transaction(async (tx) => {
    await tx.query(becomeUserSql, [claims]);
    return fn(tx);
  });
}

/**
 * Switches the current transaction to `service_role`. Also used inside a user's
 * transaction to record what the user just did (the audit log) atomically with it.
 */
export const switchToServiceSql = `select set_config('role', 'service_role', true), set_config('request.jwt.claims', '{"role":"service_role"}', true)`;

/** Runs `fn` in a transaction as `service_role`, for jobs and administration. */
export function asService<T>(db: Database, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.query(switchToServiceSql);
    return fn(tx);
  });
}

/** A uuid as a SQL literal; only validated uuids ever reach a script this way. */
export function uuidLiteral(id: string): string {
  if (!isUuid(id)) throw new ExaiError('invalid_argument', `${JSON.stringify(id)} is not a uuid.`);
  return `'${id.toLowerCase()}'::uuid`;
}

/**
 * Reads as a user in one round trip: the statements run after the role switch
 * in one implicit transaction of a multi-statement script. The statements may
 * only embed values through `uuidLiteral`. Returns each statement's rows.
 */
export async function readAsUser(db: Database, userId: string, statements: string[]): Promise<Record<string, unknown>[][]> {
  const results = await db.exec([becomeUserStatement(userId), ...statements].join(';\n'));
  return results.slice(1).map((result) => result.rows);
}

/** The role switch as a statement for scripts (`exec`); the claims hold nothing but a validated uuid. */
export function becomeUserStatement(userId: string): string {
  const claims = userClaims(userId).replaceAll("'", "''");
  return `SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', '${claims}', true)`;
}

/**
 * Any text as a dollar-quoted SQL literal. Dollar quoting has no escapes, so
 * it means the same whatever standard_conforming_strings says; the tag is
 * random and checked not to occur in the text.
 */
export function dollarQuote(text: string): string {
  for (;;) {
    const tag = `$exai_${randomBytes(6).toString('hex')}$`;
    if (!text.includes(tag)) return `${tag}${text}${tag}`;
  }
}
