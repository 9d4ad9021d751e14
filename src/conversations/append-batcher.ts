/**
 * Group commit for appends. Appends that arrive while a commit is in flight
 * wait for it and then go together in one transaction: one `append_turns` call
 * per user (each as that user, so row-level security still decides), one
 * commit for all. A lone append commits at once, so nothing waits on a timer.
 */
import type { Database } from '../db/types.js';
import { becomeUser } from '../db/session.js';
import { isUnavailableError } from '../db/errors.js';
import type { NewTurn } from './types.js';

export interface AppendRequest {
  userId: string;
  threadId: string;
  turn: NewTurn;
}

export interface AppendOutcome {
  status: 'created' | 'duplicate' | 'not_found';
  messageId: string | null;
  seq: number | null;
  createdAt: string | null;
}

export interface CommittedAppend {
  request: AppendRequest;
  outcome: AppendOutcome;
}

interface Pending {
  request: AppendRequest;
  resolve: (outcome: AppendOutcome) => void;
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
  /** After the commit, before any caller of the batch hears back. */
  afterCommit(committed: CommittedAppend[], prepared: Prepared): Promise<void>;
  /** After a failed transaction, whose outcome may be unknown. */
  afterFailure(requests: AppendRequest[], prepared: Prepared): Promise<void>;
}

export class AppendBatcher<Prepared> {
  private queue: Pending[] = [];
  private running = false;

  constructor(
    private readonly db: Database,
    private readonly hooks: BatchHooks<Prepared>,
    private readonly maxBatch = 256,
  ) {}

  append(request: AppendRequest): Promise<AppendOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      let first = true;
      while (this.queue.length > 0) {
        // After a commit, the callers it answered are still a few promise steps away from
        // queueing their next append: one turn of the event loop lets them join this batch.
        if (!first) await new Promise((resolve) => setImmediate(resolve));
        first = false;
        const batch = this.queue.splice(0, this.maxBatch);
        await this.flush(batch);
      }
    } finally {
      this.running = false;
    }
  }

  private async flush(batch: Pending[]): Promise<void> {
    const requests = batch.map((pending) => pending.request);
    let outcomes: AppendOutcome[];
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
    const committed = batch.map((pending, index) => ({ request: pending.request, outcome: outcomes[index]! }));
    try {
      await this.hooks.afterCommit(committed, prepared);
    } finally {
      committed.forEach((entry, index) => batch[index]!.resolve(entry.outcome));
    }
  }

  private async commit(requests: AppendRequest[]): Promise<AppendOutcome[]> {
    const byUser = new Map<string, { ord: number; request: AppendRequest }[]>();
    requests.forEach((request, ord) => {
      const group = byUser.get(request.userId) ?? [];
      group.push({ ord, request });
      byUser.set(request.userId, group);
    });
    const outcomes: AppendOutcome[] = new Array(requests.length);
    await this.db.transaction(async (tx) => {
      for (const userId of [...byUser.keys()].sort()) {
        const group = byUser.get(userId)!;
        await becomeUser(tx, userId);
        const payload = JSON.stringify(
          group.map(({ ord, request: { threadId, turn } }) => ({
            ord,
            conversation_id: threadId,
            role: turn.role,
            content: turn.content,
            tool_name: turn.toolName ?? null,
            provider: turn.provider ?? null,
            model: turn.model ?? null,
            reasoning_content: turn.reasoningContent ?? null,
            files: turn.files ?? [],
            input_tokens: turn.inputTokens ?? null,
            output_tokens: turn.outputTokens ?? null,
            idempotency_key: turn.idempotencyKey ?? null,
            metadata: turn.metadata ?? {},
          })),
        );
        const result = await tx.query<AppendRow>('SELECT * FROM exai.append_turns($1::jsonb)', [payload]);
        for (const row of result.rows) {
          outcomes[row.ord] = {
            status: row.status,
            messageId: row.message_id,
            seq: row.seq,
            createdAt: row.created_at === null ? null : new Date(row.created_at).toISOString(),
          };
        }
      }
    });
    return outcomes;
  }
}
