/** The rows alert evaluation leaves in `exai.alert_events`: operators' data, read as the service. */
import type { Database } from '../db/types.js';
import { asService } from '../db/session.js';

export interface AlertEvent {
  id: number;
  at: string;
  rule: string;
  state: 'firing' | 'resolved';
  observed: number | null;
  threshold: number;
  details: Record<string, unknown>;
}

/** Newest first; only one rule's when `rule` is given. */
export async function listAlertEvents(db: Database, options: { limit: number; rule?: string | undefined }): Promise<AlertEvent[]> {
  const result = await asService(db, (tx) =>
    tx.query(
      `SELECT id, at, rule, state, observed, threshold, details FROM exai.alert_events
        WHERE $2::text IS NULL OR rule = $2
        ORDER BY at DESC, id DESC LIMIT $1`,
      [options.limit, options.rule ?? null],
    ),
  );
  return result.rows.map((row) => ({
    id: Number(row.id),
    at: new Date(row.at as string | Date).toISOString(),
    rule: String(row.rule),
    state: row.state as AlertEvent['state'],
    observed: row.observed === null ? null : Number(row.observed),
    threshold: Number(row.threshold),
    details: (row.details ?? {}) as Record<string, unknown>,
  }));
}
