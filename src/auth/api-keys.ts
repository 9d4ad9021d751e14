/**
 * API keys in the database: made, listed, revoked and rotated by the service
 * (the CLI and admins), each change written to the audit log in the same
 * transaction. Keys are looked up by prefix when a request presents one.
 */
import { ExaiError } from '../errors.js';
import { asService, isUuid } from '../db/session.js';
import type { Database, Queryable } from '../db/types.js';
import { recordAudit, type AuditActor } from '../audit/audit-log.js';
import { generateKey } from './api-key-format.js';
import type { Scope } from './scopes.js';

export interface ApiKeyLimits {
  requestsPerMinute: number | null;
  tokensPerMinute: number | null;
  concurrentCalls: number | null;
}

export interface ApiKeyInfo {
  id: string;
  userId: string;
  userHandle: string;
  prefix: string;
  name: string | null;
  scopes: Scope[];
  limits: ApiKeyLimits;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  replacedBy: string | null;
  /** active, expired (including a rotated key past its grace period) or revoked. */
  state: 'active' | 'expired' | 'revoked';
}

export interface CreatedApiKey extends ApiKeyInfo {
  /** The key itself: shown once, never stored. */
  key: string;
}

export interface NewApiKey {
  userId: string;
  scopes: Scope[];
  name?: string | undefined;
  expiresInMs?: number | undefined;
  limits?: Partial<ApiKeyLimits>;
}

/** A key's row as authentication needs it. */
export interface StoredKey {
  id: string;
  userId: string;
  userHandle: string;
  secretHash: string;
  scopes: Scope[];
  limits: ApiKeyLimits;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

const columns = `k.id, k.user_id, u.handle AS user_handle, k.prefix, k.name, k.scopes, k.requests_per_minute,
  k.tokens_per_minute, k.concurrent_calls, k.created_at, k.expires_at, k.revoked_at, k.replaced_by,
  CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked' WHEN k.expires_at <= now() THEN 'expired' ELSE 'active' END AS state`;

const iso = (value: unknown) => (value === null ? null : (value as Date).toISOString());

/** Longest lifetime or grace a key may be given: 100 years, well inside what Postgres stores. */
export const maxKeyDurationMs = 100 * 365 * 86_400_000;

function limitsOf(row: Record<string, unknown>): ApiKeyLimits {
  return {
    requestsPerMinute: row.requests_per_minute as number | null,
    tokensPerMinute: row.tokens_per_minute as number | null,
    concurrentCalls: row.concurrent_calls as number | null,
  };
}

function toInfo(row: Record<string, unknown>): ApiKeyInfo {
  return {
    id: String(row.id),
    userId: String(row.user_id),
    userHandle: String(row.user_handle),
    prefix: String(row.prefix),
    name: row.name === null ? null : String(row.name),
    scopes: row.scopes as Scope[],
    limits: limitsOf(row),
    createdAt: iso(row.created_at)!,
    expiresAt: iso(row.expires_at),
    revokedAt: iso(row.revoked_at),
    replacedBy: row.replaced_by === null ? null : String(row.replaced_by),
    state: row.state as ApiKeyInfo['state'],
  };
}

async function insertKey(tx: Queryable, input: NewApiKey): Promise<CreatedApiKey> {
  const material = generateKey();
  const expiresAt = input.expiresInMs === undefined ? null : new Date(Date.now() + input.expiresInMs);
  const inserted = await tx.query<{ id: string }>(
    `INSERT INTO exai.api_keys (user_id, prefix, secret_hash, name, scopes, requests_per_minute, tokens_per_minute, concurrent_calls, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
    [
      input.userId,
      material.prefix,
      material.hash,
      input.name ?? null,
      input.scopes,
      input.limits?.requestsPerMinute ?? null,
      input.limits?.tokensPerMinute ?? null,
      input.limits?.concurrentCalls ?? null,
      expiresAt,
    ],
  );
  const info = await readKey(tx, inserted.rows[0]!.id);
  return { ...info!, key: material.key };
}

async function readKey(tx: Queryable, id: string): Promise<ApiKeyInfo | undefined> {
  const result = await tx.query(`SELECT ${columns} FROM exai.api_keys k JOIN exai.users u ON u.id = k.user_id WHERE k.id = $1`, [id]);
  return result.rows[0] === undefined ? undefined : toInfo(result.rows[0]);
}

/** Finds a key by id or prefix, for revoke and rotate. */
async function findKey(tx: Queryable, reference: string): Promise<ApiKeyInfo> {
  const byId = isUuid(reference);
  const result = await tx.query(
    `SELECT ${columns} FROM exai.api_keys k JOIN exai.users u ON u.id = k.user_id WHERE ${byId ? 'k.id = $1::uuid' : 'k.prefix = $1'} FOR UPDATE OF k`,
    [byId ? reference.toLowerCase() : reference.replace(/^exai_/, '').replace(/_.*$/, '')],
  );
  const row = result.rows[0];
  if (row === undefined) throw new ExaiError('not_found', `No API key ${JSON.stringify(reference)}: give a key id or prefix from \`exai keys list\`.`);
  return toInfo(row);
}

export async function createApiKey(db: Database, input: NewApiKey, actor: AuditActor): Promise<CreatedApiKey> {
  return asService(db, async (tx) => {
    const created = await insertKey(tx, input);
    await recordAudit(tx, actor, {
      action: 'key.create',
      target: `key:${created.prefix}`,
      outcome: 'success',
      details: { key_id: created.id, user: created.userHandle, scopes: created.scopes, expires_at: created.expiresAt },
    });
    return created;
  });
}

export async function listApiKeys(db: Database, userId: string | undefined): Promise<ApiKeyInfo[]> {
  return asService(db, async (tx) => {
    const result = await tx.query(
      `SELECT ${columns} FROM exai.api_keys k JOIN exai.users u ON u.id = k.user_id
        WHERE $1::uuid IS NULL OR k.user_id = $1::uuid ORDER BY u.handle, k.created_at DESC`,
      [userId ?? null],
    );
    return result.rows.map(toInfo);
  });
}

export async function revokeApiKey(db: Database, reference: string, actor: AuditActor): Promise<ApiKeyInfo & { alreadyRevoked: boolean }> {
  return asService(db, async (tx) => {
    const key = await findKey(tx, reference);
    if (key.revokedAt === null) await tx.query('UPDATE exai.api_keys SET revoked_at = now() WHERE id = $1', [key.id]);
    await recordAudit(tx, actor, {
      action: 'key.revoke',
      target: `key:${key.prefix}`,
      outcome: 'success',
      details: { key_id: key.id, user: key.userHandle, already_revoked: key.revokedAt !== null },
    });
    return { ...(await readKey(tx, key.id))!, alreadyRevoked: key.revokedAt !== null };
  });
}

/**
 * A new key with the old one's user, scopes, limits and name. The old key keeps
 * working for `graceMs` (or until its own expiry, if sooner), then stops.
 */
export async function rotateApiKey(db: Database, reference: string, graceMs: number, actor: AuditActor): Promise<{ created: CreatedApiKey; previous: ApiKeyInfo }> {
  return asService(db, async (tx) => {
    const old = await findKey(tx, reference);
    if (old.state !== 'active') {
      throw new ExaiError('invalid_argument', `API key ${old.prefix} is ${old.state}; only an active key can be rotated. Create a new one with \`exai keys create\`.`);
    }
    // Rotating twice would leave two live successors, one of them recorded nowhere.
    if (old.replacedBy !== null) {
      const successor = await readKey(tx, old.replacedBy);
      throw new ExaiError('conflict', `API key ${old.prefix} was already rotated to ${successor?.prefix ?? old.replacedBy}; rotate or revoke that one instead.`);
    }
    const remainingMs = old.expiresAt === null ? undefined : Date.parse(old.expiresAt) - Date.now();
    const created = await insertKey(tx, {
      userId: old.userId,
      scopes: old.scopes,
      name: old.name ?? undefined,
      expiresInMs: remainingMs,
      limits: {
        requestsPerMinute: old.limits.requestsPerMinute,
        tokensPerMinute: old.limits.tokensPerMinute,
        concurrentCalls: old.limits.concurrentCalls,
      },
    });
    await tx.query(
      `UPDATE exai.api_keys SET replaced_by = $2,
              expires_at = least(coalesce(expires_at, 'infinity'::timestamptz), now() + $3 * interval '1 millisecond')
        WHERE id = $1`,
      [old.id, created.id, graceMs],
    );
    await recordAudit(tx, actor, {
      action: 'key.rotate',
      target: `key:${old.prefix}`,
      outcome: 'success',
      details: { key_id: old.id, new_key_id: created.id, new_prefix: created.prefix, user: old.userHandle, grace_ms: graceMs },
    });
    return { created, previous: (await readKey(tx, old.id))! };
  });
}

/** The key with this prefix, for authentication; undefined when there is none. */
export async function findKeyForAuth(db: Database, prefix: string): Promise<StoredKey | undefined> {
  return asService(db, async (tx) => {
    const result = await tx.query(
      `SELECT k.id, k.user_id, u.handle, k.secret_hash, k.scopes, k.requests_per_minute, k.tokens_per_minute,
              k.concurrent_calls, k.expires_at, k.revoked_at
         FROM exai.api_keys k JOIN exai.users u ON u.id = k.user_id WHERE k.prefix = $1`,
      [prefix],
    );
    const row = result.rows[0];
    if (row === undefined) return undefined;
    return {
      id: String(row.id),
      userId: String(row.user_id),
      userHandle: String(row.handle),
      secretHash: String(row.secret_hash),
      scopes: row.scopes as Scope[],
      limits: limitsOf(row),
      expiresAt: row.expires_at as Date | null,
      revokedAt: row.revoked_at as Date | null,
    };
  });
}
