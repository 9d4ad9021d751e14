/**
 * The conversation store: Postgres is the truth, the cache a copy.
 *
 * - append: one transaction (grouped with concurrent appends), idempotent by
 *   key, gap-free sequence; announced to the cache before the commit, and the
 *   cached copy extended or dropped after the caller has its answer.
 * - load: the cache, else Postgres as the user, then the cache is filled.
 *   A thread never expires while its rows exist: a cache miss is only slower.
 */
import { ExaiError } from '../errors.js';
import type { Cache } from '../cache/types.js';
import type { Database, Queryable } from '../db/types.js';
import { asUser, readAsUser, switchToServiceSql, uuidLiteral } from '../db/session.js';
import { sqlState } from '../db/errors.js';
import type { Logger } from '../logger.js';
import { AppendBatcher, type AppendRequest, type CommittedAppend } from './append-batcher.js';
import { committedTurn, threadColumns, threadFromLog, threadToLog, toThreadSummary, toTurn, turnColumns, withDerivedFields } from './rows.js';
import type { AppendResult, NewThread, Thread, ThreadChain, ThreadPage, ThreadStatus, ThreadSummary, Turn } from './types.js';
import { parseThreadId, threadNotFound, validateNewThread, validateNewTurn } from './validate.js';

export interface ConversationStoreOptions {
  cacheTtlMs: number;
  maxMessageBytes: number;
  maxThreadDepth: number;
}

export interface ListThreadsOptions {
  limit?: number;
  before?: string;
  status?: ThreadStatus;
}

function cacheKey(userId: string, threadId: string): string {
  return `thread:${userId}:${threadId}`;
}

/** The position after a listed row: its exact (microsecond) updated_at as Postgres wrote it, and its id. */
function encodeCursor(position: string, id: string): string {
  return Buffer.from(JSON.stringify([position, id])).toString('base64url');
}

/** Exactly what encodeCursor writes: a UTC time to the microsecond. */
const positionPattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

function decodeCursor(cursor: string): [string, string] {
  try {
    const decoded: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (!Array.isArray(decoded) || decoded.length !== 2) throw new Error('not a pair');
    const [updatedAt, id] = decoded as [unknown, unknown];
    if (typeof updatedAt !== 'string' || typeof id !== 'string' || !positionPattern.test(updatedAt)) throw new Error('bad position');
    // A calendar date that exists (no 31 February), so Postgres never sees one it refuses.
    const parsed = new Date(`${updatedAt.slice(0, 23)}Z`);
    if (Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 19) !== updatedAt.slice(0, 19)) throw new Error('bad date');
    return [updatedAt, parseThreadId(id)];
  } catch {
    throw new ExaiError('invalid_argument', `Cursor ${JSON.stringify(cursor.slice(0, 80))} is not valid: pass the nextCursor of a previous page.`);
  }
}

export class ConversationStore {
  private readonly batcher: AppendBatcher<Map<string, string>>;

  constructor(
    private readonly db: Database,
    private readonly cache: Cache,
    private readonly options: ConversationStoreOptions,
    private readonly logger: Logger,
  ) {
    this.batcher = new AppendBatcher(db, {
      beforeCommit: (requests) => this.announceAppends(requests),
      afterCommit: (committed, tokens) => this.updateCache(committed, tokens),
      afterFailure: async (_requests, tokens) => {
        // The transaction may or may not have committed: drop the cached copies.
        await Promise.all([...tokens].map(([key, token]) => this.cache.endAppend(key, token, { drop: true })));
      },
    });
  }

  async createThread(userId: string, input: NewThread = {}): Promise<ThreadSummary> {
    const thread = validateNewThread(input);
    const parentId = thread.parentId === undefined ? null : parseThreadId(thread.parentId);
    try {
      const result = await asUser(this.db, userId, (tx) =>
        tx.query(
          `INSERT INTO exai.conversations (owner_id, title, tool_name, parent_id, metadata)
           VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING ${threadColumns}`,
          [userId, thread.title ?? null, thread.toolName ?? null, parentId, JSON.stringify(thread.metadata ?? {})],
        ),
      );
      return toThreadSummary(result.rows[0]!);
    } catch (error) {
      if (sqlState(error) === '23503' && parentId !== null && /parent thread/.test((error as Error).message)) {
        throw new ExaiError('not_found', `Parent conversation ${parentId} was not found.`, { details: { parent_id: parentId } });
      }
      throw error;
    }
  }

  async appendTurn(userId: string, threadId: string, input: unknown): Promise<AppendResult> {
    const [result] = await this.appendTurns(userId, threadId, [input]);
    return result!;
  }

  /**
   * Appends several turns to one thread together: all or none, in this order,
   * numbered consecutively (a question and its answer, for instance).
   */
  async appendTurns(userId: string, threadId: string, inputs: unknown[]): Promise<AppendResult[]> {
    const id = parseThreadId(threadId);
    if (inputs.length === 0) throw new ExaiError('invalid_argument', 'Nothing to append: pass at least one turn.');
    const turns = inputs.map((input) => validateNewTurn(input, this.options.maxMessageBytes));
    const outcomes = await this.batcher.append({ userId, threadId: id, turns });
    if (outcomes.some((outcome) => outcome.status === 'not_found')) throw threadNotFound(id);
    return Promise.all(
      outcomes.map(async (outcome, index) => {
        if (outcome.status === 'duplicate') {
          // The earlier turn is returned as it was stored, not as this retry described it.
          return { turn: await this.loadTurn(userId, id, outcome.seq!), deduplicated: true };
        }
        return { turn: committedTurn(turns[index]!, outcome), deduplicated: false };
      }),
    );
  }

  async loadThread(userId: string, threadId: string): Promise<Thread> {
    const id = parseThreadId(threadId);
    const key = cacheKey(userId, id);
    const cached = await this.cache.getLog(key);
    if (cached !== undefined) {
      try {
        return threadFromLog(cached);
      } catch (error) {
        this.logger.warn({ thread: id, err: (error as Error).message }, 'unreadable cache entry dropped');
        await this.cache.deleteLog(key);
      }
    }
    const [threadRows, turnRows] = await readAsUser(this.db, userId, [
      `SELECT * FROM exai.thread_head(${uuidLiteral(id)})`,
      `SELECT * FROM exai.thread_turns(${uuidLiteral(id)})`,
    ]);
    const row = threadRows?.[0];
    if (row === undefined) throw threadNotFound(id);
    // Built like a cached copy (threadFromLog): turns are the truth for the count (a turn committed
    // between the two reads can outrun it) and for the last activity (updated_at moves coarsely).
    const build = (): Thread => withDerivedFields({ ...toThreadSummary(row), turns: (turnRows ?? []).map(toTurn) });
    const thread = build();
    // Filled once the caller has its answer, rebuilt from the rows (threads handed out are treated
    // as read-only); the cache's floor and announcement rules keep a late fill safe.
    setImmediate(() => void this.cache.fillLog(key, threadToLog(build()), this.options.cacheTtlMs));
    return thread;
  }

  async listThreads(userId: string, options: ListThreadsOptions = {}): Promise<ThreadPage> {
    const limit = options.limit ?? 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > 200) {
      throw new ExaiError('invalid_argument', `limit must be a whole number from 1 to 200 (got ${String(options.limit)}).`);
    }
    if (options.status !== undefined && options.status !== 'active' && options.status !== 'archived') {
      throw new ExaiError('invalid_argument', `status must be active or archived (got ${JSON.stringify(options.status)}).`);
    }
    const cursor = options.before === undefined ? undefined : decodeCursor(options.before);
    const rows = await asUser(this.db, userId, (tx) =>
      tx.query(
        `SELECT ${threadColumns}, to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS position
           FROM exai.conversations
          WHERE ($1::text IS NULL OR status = $1)
            AND ($2::timestamptz IS NULL OR (updated_at, id) < ($2::timestamptz, $3::uuid))
          ORDER BY updated_at DESC, id DESC
          LIMIT $4`,
        [options.status ?? null, cursor?.[0] ?? null, cursor?.[1] ?? null, limit + 1],
      ),
    );
    const threads = rows.rows.slice(0, limit).map(toThreadSummary);
    const page: ThreadPage = { threads };
    const last = rows.rows[limit - 1];
    if (rows.rows.length > limit && last !== undefined) page.nextCursor = encodeCursor(String(last.position), String(last.id));
    return page;
  }

  /** The thread and its ancestors, nearest first, within EXAI_THREAD_MAX_DEPTH. */
  async threadChain(userId: string, threadId: string): Promise<ThreadChain> {
    const id = parseThreadId(threadId);
    const result = await asUser(this.db, userId, (tx) =>
      tx.query<{ id: string; parent_id: string | null; depth: number; is_cycle: boolean }>(
        'SELECT id, parent_id, depth, is_cycle FROM exai.thread_chain($1, $2)',
        [id, this.options.maxThreadDepth],
      ),
    );
    if (result.rows.length === 0) throw threadNotFound(id);
    const cycle = result.rows.some((row) => row.is_cycle);
    const chain = result.rows.filter((row) => !row.is_cycle);
    const last = chain[chain.length - 1]!;
    return {
      ids: chain.map((row) => row.id),
      cycle,
      truncated: !cycle && last.parent_id !== null && last.depth >= this.options.maxThreadDepth,
    };
  }

  async setStatus(userId: string, threadId: string, status: ThreadStatus): Promise<ThreadSummary> {
    const id = parseThreadId(threadId);
    if (status !== 'active' && status !== 'archived') {
      throw new ExaiError('invalid_argument', `status must be active or archived (got ${JSON.stringify(status)}).`);
    }
    const result = await asUser(this.db, userId, (tx) =>
      tx.query(`UPDATE exai.conversations SET status = $2, updated_at = now() WHERE id = $1 RETURNING ${threadColumns}`, [id, status]),
    );
    await this.cache.invalidateLog(cacheKey(userId, id));
    const row = result.rows[0];
    if (row === undefined) throw threadNotFound(id);
    return toThreadSummary(row);
  }

  /**
   * Deletes a thread as its owner. `record`, when given, runs in the same
   * transaction as the service role (for the audit log): both happen or neither.
   */
  async deleteThread(userId: string, threadId: string, record?: (serviceTx: Queryable) => Promise<void>): Promise<void> {
    const id = parseThreadId(threadId);
    await asUser(this.db, userId, async (tx) => {
      const result = await tx.query('DELETE FROM exai.conversations WHERE id = $1', [id]);
      if (result.affectedRows === 0) throw threadNotFound(id);
      if (record !== undefined) {
        await tx.query(switchToServiceSql);
        await record(tx);
      }
    });
    await this.cache.invalidateLog(cacheKey(userId, id));
  }

  private async loadTurn(userId: string, threadId: string, seq: number): Promise<Turn> {
    const result = await asUser(this.db, userId, (tx) =>
      tx.query(`SELECT ${turnColumns} FROM exai.messages WHERE conversation_id = $1 AND seq = $2`, [threadId, seq]),
    );
    const row = result.rows[0];
    if (row === undefined) throw threadNotFound(threadId);
    return toTurn(row);
  }

  /** Before a commit: tell the cache which threads are about to change (one token per thread). */
  private async announceAppends(requests: AppendRequest[]): Promise<Map<string, string>> {
    const keys = new Set(requests.map((request) => cacheKey(request.userId, request.threadId)));
    const tokens = new Map<string, string>();
    await Promise.all(
      [...keys].map(async (key) => {
        tokens.set(key, await this.cache.beginAppend(key));
      }),
    );
    return tokens;
  }

  /** After a commit: extend each cached thread by its new turns, or drop it when it is not the prefix they follow. */
  private async updateCache(committed: CommittedAppend[], tokens: Map<string, string>): Promise<void> {
    const byThread = new Map<string, { userId: string; threadId: string; turns: Turn[] }>();
    for (const { request, outcomes } of committed) {
      outcomes.forEach((outcome, index) => {
        if (outcome.status !== 'created') return;
        const key = cacheKey(request.userId, request.threadId);
        const entry = byThread.get(key) ?? { userId: request.userId, threadId: request.threadId, turns: [] };
        entry.turns.push(committedTurn(request.turns[index]!, outcome));
        byThread.set(key, entry);
      });
    }
    await Promise.all(
      [...tokens].map(async ([key, token]) => {
        const entry = byThread.get(key);
        if (entry === undefined) return this.cache.endAppend(key, token, { drop: false });
        entry.turns.sort((a, b) => a.seq - b.seq);
        const expected = entry.turns[0]!.seq - 1;
        const entries = entry.turns.map((turn) => JSON.stringify(turn));
        await this.cache.appendLog(key, expected, entries, this.options.cacheTtlMs, token);
      }),
    );
  }
}
