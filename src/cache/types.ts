/**
 * The cache: one interface, an in-process and a Redis implementation. It only
 * speeds reads up; Postgres stays the source of truth, and every operation
 * degrades to a miss or a no-op when the backend is unavailable.
 */

/** An append-only log with a header, such as a thread and its turns. */
export interface CachedLog {
  head: string;
  entries: string[];
}

export type AppendOutcome = 'appended' | 'dropped' | 'absent' | 'unavailable';

export interface CacheHealth {
  backend: 'memory' | 'redis';
  status: 'ok' | 'degraded';
  detail?: string;
}

export interface Cache {
  readonly backend: 'memory' | 'redis';
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  delete(key: string): Promise<void>;

  getLog(key: string): Promise<CachedLog | undefined>;
  /**
   * Stores a whole log read from the source of truth, unless the cache already
   * holds one at least as long, or a writer has since appended past it (a
   * "floor"): a reader that loaded before a concurrent append never overwrites
   * the newer state with its older snapshot.
   */
  fillLog(key: string, log: CachedLog, ttlMs: number): Promise<boolean>;
  /**
   * Announces a write to the source of truth that will change this log, before
   * it commits. While an announcement is open the log is neither served nor
   * filled (readers go to the database). It is closed by `appendLog` or
   * `endAppend` with the returned token. One left open by a writer that died
   * between its commit and its cache update is discarded once older than
   * `pendingStaleMs`; the log is then filled afresh from the database, so a
   * committed turn never hides behind a stale copy.
   */
  beginAppend(key: string): Promise<string>;
  /**
   * Appends entries when the cached log holds exactly `expectedLength`;
   * otherwise drops the cached log and raises the floor to the new length.
   * Closes the announcement `token` if one is given.
   */
  appendLog(key: string, expectedLength: number, entries: string[], ttlMs: number, token?: string): Promise<AppendOutcome>;
  /** Closes an announcement without appending; `drop` also removes the log (the write's outcome is unknown). */
  endAppend(key: string, token: string, options: { drop: boolean }): Promise<void>;
  deleteLog(key: string): Promise<void>;
  /**
   * Drops the log after a change that is not an append (a status change, a
   * deletion) and refuses fills for a while, so a reader that loaded the old
   * state before the change cannot put it back.
   */
  invalidateLog(key: string): Promise<void>;

  health(): CacheHealth;
  close(): Promise<void>;
}

/** How long a floor outlives the append that set it: longer than any read of a thread takes. */
export const floorTtlMs = 120_000;

/** An append announced longer ago than this, and never settled, belongs to a writer that died. */
export const pendingStaleMs = 30_000;
