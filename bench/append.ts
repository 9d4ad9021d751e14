/**
 * "append turn": turns per second through ConversationStore.appendTurn, with 1
 * and with 32 concurrent writers, beside raw INSERTs of the same rows.
 *
 * - Project path: appendTurn (validation, group commit in one transaction,
 *   role switch, exai.append_turns with its thread locks and turn_count bump,
 *   row-level security, then the cache update). Each writer appends to its own
 *   thread; all threads belong to one user. The threads are not in the cache, so
 *   the cache update is the "absent" case (it still records a floor).
 * - Baseline: plain INSERTs into exai.messages as the connecting superuser (no
 *   role switch, no RLS, no lock, no turn_count), into a separate set of
 *   threads so (conversation_id, seq) stays unique:
 *   - 1 writer: one row per statement, each statement its own transaction;
 *   - 32 writers: one 32-row INSERT … SELECT FROM jsonb_to_recordset per
 *     statement (one row per thread), i.e. perfect batching with no waiting.
 * Targets: at 32 writers the project must reach half the batched baseline
 * (ratio >= 0.5). At 1 writer there is no target: the project's transaction is
 * BEGIN + role switch + append_turns + COMMIT against one autocommitted INSERT,
 * so its ratio mostly measures round trips; it is reported to watch the trend.
 */
import { randomBytes } from 'node:crypto';
import { ensureUser } from '../src/users/users.js';
import {
  compareThroughput,
  countingDatabase,
  makeResult,
  runForDuration,
  type BenchContext,
  type BenchResult,
  type Benchmark,
} from './harness.js';
import { insertBatchSql, insertOneParams, insertOneSql, makeTurns, messageRow } from './workload.js';

async function measureAppend(context: BenchContext, writers: number): Promise<BenchResult> {
  const { backend, quick } = context;
  const { db } = backend;
  const counting = countingDatabase(db);
  const store = backend.createStore(counting.db);
  const user = await ensureUser(db, `bench-append-${writers}-${randomBytes(4).toString('hex')}`);
  const projectThreads: string[] = [];
  const baselineThreads: string[] = [];
  for (let i = 0; i < writers; i++) {
    projectThreads.push((await store.createThread(user.id, { title: `project writer ${i}`, toolName: 'chat' })).id);
    baselineThreads.push((await store.createThread(user.id, { title: `baseline writer ${i}`, toolName: 'chat' })).id);
  }
  const turns = makeTurns(256, 7 + writers);
  const turnFor = (writer: number, iteration: number) => turns[(writer * 37 + iteration) % turns.length]!;

  let projectTurns = 0;
  const projectIterations = new Array<number>(writers).fill(0);
  /** Transactions per project call; the first call is the warm-up. */
  const projectTransactions: number[] = [];
  const project = async (durationMs: number) => {
    const before = counting.counts.transactions;
    const round = await runForDuration(writers, durationMs, async (writer) => {
      const iteration = projectIterations[writer]!++;
      await store.appendTurn(user.id, projectThreads[writer]!, turnFor(writer, iteration));
      projectTurns++;
      return 1;
    });
    projectTransactions.push(counting.counts.transactions - before);
    return round;
  };

  const baselineSeq = new Array<number>(writers).fill(0);
  const baseline =
    writers === 1
      ? (durationMs: number) =>
          runForDuration(1, durationMs, async () => {
            const seq = ++baselineSeq[0]!;
            await db.query(insertOneSql, insertOneParams(messageRow(turnFor(0, seq - 1), baselineThreads[0]!, user.id, seq)));
            return 1;
          })
      : (durationMs: number) =>
          runForDuration(1, durationMs, async () => {
            const rows = baselineThreads.map((threadId, writer) => {
              const seq = ++baselineSeq[writer]!;
              return messageRow(turnFor(writer, seq - 1), threadId, user.id, seq);
            });
            await db.query(insertBatchSql, [JSON.stringify(rows)]);
            return rows.length;
          });

  const rounds = quick ? 2 : 4;
  const roundMs = quick ? 1500 : 4000;
  const comparison = await compareThroughput({ warmupMs: quick ? 500 : 1500, roundMs, rounds, project, baseline });
  const measuredTurns = comparison.projectRounds.reduce((sum, round) => sum + round.ops, 0);
  const measuredTransactions = projectTransactions.slice(1).reduce((sum, n) => sum + n, 0);
  const batch = measuredTurns / Math.max(1, measuredTransactions);

  // Everything the project said it stored is there: as many rows as appends, and turn_count agrees.
  const check = await db.query<{ rows: number; turn_count: number }>(
    `SELECT (SELECT count(*) FROM exai.messages WHERE conversation_id = ANY($1::uuid[]))::int AS rows,
            (SELECT coalesce(sum(turn_count), 0) FROM exai.conversations WHERE id = ANY($1::uuid[]))::int AS turn_count`,
    [projectThreads],
  );
  const stored = check.rows[0]!;
  if (stored.rows !== projectTurns || stored.turn_count !== projectTurns) {
    throw new Error(`append bench: ${projectTurns} appends reported, ${stored.rows} rows and turn_count ${stored.turn_count} stored`);
  }
  const plural = writers === 1 ? 'writer' : 'writers';
  return makeResult({
    name: `append turn, ${writers} ${plural}`,
    backend: backend.name,
    value: comparison.project,
    unit: 'turns/s',
    baseline: comparison.baseline,
    better: 'higher',
    target: writers === 1 ? null : 0.5,
    notes:
      (writers === 1
        ? 'project: ConversationStore.appendTurn from 1 writer, one thread'
        : `project: ConversationStore.appendTurn from ${writers} concurrent writers, one thread each, one user`) +
      (writers === 1 ? '' : `; ${batch.toFixed(1)} turns per group commit on average`) +
      `; baseline: raw INSERT into exai.messages as superuser, ` +
      (writers === 1 ? 'one row per statement/transaction' : `${writers} rows per statement (jsonb_to_recordset)`) +
      `; turns 300-1500 chars; ${rounds} alternating rounds of ${roundMs} ms per side after a warm-up`,
  });
}

export const appendBenchmark: Benchmark = {
  id: 'append',
  description: 'append turn, 1 and 32 writers, vs raw INSERT',
  async run(context) {
    const results: BenchResult[] = [];
    for (const writers of [1, 32]) {
      context.progress(`append turn, ${writers} writer(s)`);
      results.push(await measureAppend(context, writers));
    }
    return results;
  },
};
