/**
 * The audit log: who did what, when, from where, and how it ended. Rows are
 * appended by the service role, numbered and hash-chained by the database
 * (migration 0005), and never updated. Secrets never enter a row: callers pass
 * key prefixes and ids, and details are scrubbed of anything that looks like a
 * credential before they are written.
 */
import { asService } from '../db/session.js';
import type { Database, Queryable } from '../db/types.js';
import { redactSecrets } from './redact.js';

export type AuditOutcome = 'success' | 'failure' | 'denied';

/** Who acted: a user (by id and a label) or the operator at the CLI. */
export interface AuditActor {
  userId?: string | undefined;
  /** A handle, a key prefix, `cli:<os user>`: never a secret. */
  label: string;
  /** Where from: a client address or `cli`. */
  source: string;
}

export interface AuditEvent {
  /** Dotted lower-case name such as `auth.failure`, `key.create`, `thread.delete`. */
  action: string;
  target?: string | undefined;
  outcome: AuditOutcome;
  details?: Record<string, unknown>;
}

export interface AuditEntry {
  seq: number;
  at: string;
  actorId: string | null;
  actor: string;
  action: string;
  target: string | null;
  source: string | null;
  outcome: AuditOutcome;
  details: Record<string, unknown>;
  hash: string;
}

const clip = (text: string | undefined, max: number) => (text === undefined ? null : text.slice(0, max));

/** Appends one row inside the caller's transaction (which must run as the service role). */
export async function recordAudit(tx: Queryable, actor: AuditActor, event: AuditEvent): Promise<void> {
  await tx.query(
    `INSERT INTO exai.audit_log (actor_id, actor, action, target, source, outcome, details)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [
      actor.userId ?? null,
      redactSecrets(actor.label).slice(0, 200) || 'unknown',
      event.action,
      clip(event.target === undefined ? undefined : redactSecrets(event.target), 500),
      clip(actor.source, 200),
      event.outcome,
      JSON.stringify(redactSecrets(event.details ?? {})),
    ],
  );
}

/** Appends one row in its own transaction. */
export function appendAudit(db: Database, actor: AuditActor, event: AuditEvent): Promise<void> {
  return asService(db, (tx) => recordAudit(tx, actor, event));
}

export async function listAudit(db: Database, options: { limit: number; action?: string | undefined }): Promise<AuditEntry[]> {
  return asService(db, async (tx) => {
    const result = await tx.query(
      `SELECT seq, at, actor_id, actor, action, target, source, outcome, details, hash FROM exai.audit_log
        WHERE $2::text IS NULL OR action = $2 OR starts_with(action, $2 || '.')
        ORDER BY seq DESC LIMIT $1`,
      [options.limit, options.action ?? null],
    );
    return result.rows.map((row) => ({
      seq: Number(row.seq),
      at: (row.at as Date).toISOString(),
      actorId: row.actor_id === null ? null : String(row.actor_id),
      actor: String(row.actor),
      action: String(row.action),
      target: row.target === null ? null : String(row.target),
      source: row.source === null ? null : String(row.source),
      outcome: row.outcome as AuditOutcome,
      details: row.details as Record<string, unknown>,
      hash: String(row.hash),
    }));
  });
}

export interface AuditVerification {
  ok: boolean;
  rows: number;
  /** The last row's number and hash: record them elsewhere to detect removal of the newest rows later. */
  head: { seq: number; hash: string } | null;
  /** The first row that does not fit the chain, and why. */
  firstBad?: { seq: number; problem: string };
}

/**
 * Walks the chain in the database: each row's hash must match its content and
 * the previous row's hash, and the numbers must run 1, 2, 3 … without a gap.
 */
export async function verifyAudit(db: Database): Promise<AuditVerification> {
  return asService(db, async (tx) => {
    const bad = await tx.query<{ seq: string; problem: string }>(`
      WITH chain AS (
        SELECT a.seq, a.hash, a.prev_hash,
               row_number() OVER (ORDER BY a.seq) AS position,
               lag(a.hash) OVER (ORDER BY a.seq) AS previous_hash,
               exai.audit_row_hash(a.prev_hash, a.seq, a.at, a.actor_id, a.actor, a.action, a.target, a.source, a.outcome, a.details) AS computed
          FROM exai.audit_log a
      )
      SELECT seq::text,
             CASE WHEN seq <> position THEN 'a row before it is missing (numbers skip to ' || seq || ')'
                  WHEN prev_hash <> coalesce(previous_hash, repeat('0', 64)) THEN 'it does not link to the row before it'
                  ELSE 'its content does not match its hash (the row was edited)' END AS problem
        FROM chain
       WHERE seq <> position OR prev_hash <> coalesce(previous_hash, repeat('0', 64)) OR hash <> computed
       ORDER BY seq LIMIT 1`);
    const summary = await tx.query<{ rows: string; seq: string | null; hash: string | null }>(
      `SELECT (SELECT count(*) FROM exai.audit_log)::text AS rows, h.seq::text AS seq, h.hash
         FROM (SELECT 1) one LEFT JOIN (SELECT seq, hash FROM exai.audit_log ORDER BY seq DESC LIMIT 1) h ON true`,
    );
    const head = summary.rows[0]!;
    const verification: AuditVerification = {
      ok: bad.rows.length === 0,
      rows: Number(head.rows),
      head: head.seq === null ? null : { seq: Number(head.seq), hash: head.hash! },
    };
    if (bad.rows[0] !== undefined) verification.firstBad = { seq: Number(bad.rows[0].seq), problem: bad.rows[0].problem };
    return verification;
  });
}
