/**
 * Group commit for appends. Appends that arrive while commits are in flight
 * wait and then go together in one transaction, sent as one multi-statement
 * script: per user the role switch and one `append_turns` call (so row-level
 * security still decides), one commit for all. A lone append commits at once,
 * so nothing waits on a timer. Users are sorted and each call locks its threads
 * in id order, so batches (of this or any instance) take row locks in one
 * global order and never deadlock one another.
 */
import type { Database } from '../db/types.js';
import { becomeUserStatement, dollarQuote } from '../db/session.js';
import { isUnavailableError } from '../db/errors.js';
import type { NewTurn } from './types.js';
import { turnRecord } from './rows.js';

export interface AppendRequest {
  userId: string;
  threadId: string;
  /** Appended together: all of them or none, in this order. */
  turns: NewTurn[];
}

export interface AppendOutcome {
  status: 'created' | 'duplicate' | 'not_found';
  messageId: string | null;
  seq: number | null;
  createdAt: string | null;
}

export interface CommittedAppend {
  request: AppendRequest;
  /** One per turn of the request, in its order. */
  outcomes: AppendOutcome[];
}

interface Pending {
  request: AppendRequest;
  resolve: (outcomes: AppendOutcome[]) => void;
  reject: (error: unknown) => void;
}

interface AppendRow {
  ord: number;
  status: AppendOutcome['status'];
  message_id: string | null;
  seq: number | null;
  created_at: Date | string | null;
}

/** What happens around each batch's transaction (the cache's part). */
export interface BatchHooks<Prepared> {
  /** Before the transaction; its result goes to the hook that follows. */
  beforeCommit(requests: AppendRequest[]): Promise<Prepared>;
  /** After the commit, once the callers have their answers; not awaited. */
  afterCommit(committed: CommittedAppend[], prepared: Prepared): Promise<void>;
  /** After a failed transaction, whose outcome may be unknown. */
  afterFailure(requests: AppendRequest[], prepared: Prepared): Promise<void>;
}

export class AppendBatcher<Prepared> {
  private queue: Pending[] = [];
  private inFlight = 0;

  constructor(
    private readonly db: Database,
    private readonly hooks: BatchHooks<Prepared>,
    /** Batches committing at once: while one waits on the database, the next is prepared and sent. */
    private readonly maxInFlight = 2,
    private readonly maxBatch = 256,
  ) {}

  append(request: AppendRequest): Promise<AppendOutcome[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.inFlight >= this.maxInFlight || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.maxBatch);
    this.inFlight += 1;
    void this.flush(batch).finally(() => {
      this.inFlight -= 1;
      // The callers just answered are a few promise steps away from queueing their next
      // append: one turn of the event loop lets them join the next batch.
      setImmediate(() => this.kick());
    });
  }

  private async flush(batch: Pending[]): Promise<void> {
    const requests = batch.map((pending) => pending.request);
    let outcomes: AppendOutcome[][];
    let prepared: Prepared;
    try {
      prepared = await this.hooks.beforeCommit(requests);
    } catch (error) {
      for (const pending of batch) pending.reject(error);
      return;
    }
    try {
      outcomes = await this.commit(requests);
    } catch (error) {
      await this.hooks.afterFailure(requests, prepared).catch(() => undefined);
      // One bad append (or a deadlock between instances) must not fail the others: retry them one by one.
      if (batch.length > 1 && !isUnavailableError(error)) {
        for (const pending of batch) await this.flush([pending]);
        return;
      }
      for (const pending of batch) pending.reject(error);
      return;
    }
    const committed = batch.map((pending, index) => ({ request: pending.request, outcomes: outcomes[index]! }));
    committed.forEach((entry, index) => batch[index]!.resolve(entry.outcomes));
    // The callers need not wait for the cache: until this lands, their announcements keep readers
    // on the database, so a read right after the acknowledgement still sees the new turns.
    void this.hooks.afterCommit(committed, prepared).catch(() => undefined);
  }

  private async commit(requests: AppendRequest[]): Promise<AppendOutcome[][]> {
    // Every turn gets a running number (ord) across the batch; it maps the results back.
    const byUser = new Map<string, { ord: number; threadId: string; turn: NewTurn }[]>();
    const ordsOf: number[][] = [];
    let ord = 0;
    for (const request of requests) {
      const group = byUser.get(request.userId) ?? [];
      const ords: number[] = [];
      for (const turn of request.turns) {
        group.push({ ord, threadId: request.threadId, turn });
        ords.push(ord);
        ord += 1;
      }
      ordsOf.push(ords);
      byUser.set(request.userId, group);
    }
    // One round trip: a multi-statement script runs as one implicit transaction, which commits
    // when the last statement succeeds and rolls back whole when any fails.
    const users = [...byUser.keys()].sort();
    const statements = users.flatMap((userId) => {
      const payload = JSON.stringify(
        byUser.get(userId)!.map((entry) => ({ ord: entry.ord, conversation_id: entry.threadId, ...turnRecord(entry.turn) })),
      );
      return [becomeUserStatement(userId), `SELECT * FROM exai.append_turns(${dollarQuote(payload)}::jsonb)`];
    });
    const results = await this.db.exec(statements.join(';\n'));
    const byOrd: AppendOutcome[] = new Array(ord);
    users.forEach((_, index) => {
      for (const row of results[index * 2 + 1]!.rows as unknown as AppendRow[]) {
        byOrd[row.ord] = {
          status: row.status,
          messageId: row.message_id,
          seq: row.seq,
          createdAt: row.created_at === null ? null : new Date(row.created_at).toISOString(),
        };
      }
    });
    return ordsOf.map((ords) => ords.map((index) => byOrd[index]!));
  }
}
