/**
 * Administration: users, API keys and the audit log. Each operation validates
 * its input and runs as the service role; the CLI runs them directly or, when a
 * server owns the embedded database, through that server's internal API.
 */
import { z } from 'zod';
import { listAudit, verifyAudit, type AuditActor } from '../audit/audit-log.js';
import { createApiKey, listApiKeys, maxKeyDurationMs, revokeApiKey, rotateApiKey } from '../auth/api-keys.js';
import { allScopes, defaultUserScopes, type Scope } from '../auth/scopes.js';
import type { Config } from '../config.js';
import type { Database } from '../db/types.js';
import { ExaiError } from '../errors.js';
import { queueNamePattern } from '../jobs/schema.js';
import { listJobs, retryJob } from '../jobs/list-jobs.js';
import { jobStates } from '../jobs/types.js';
import { createUser, deleteUser, findUserByHandle, listUsers } from '../users/users.js';
import { statsOperations } from './stats-operations.js';
import { countPendingFileWork, indexPendingFileChunks } from '../search/file-indexer.js';
import { indexPendingMessages } from '../search/indexer.js';
import { indexAfterBackfill, modelIndexState, openEmbedder, type ModelIndexState } from '../search/open-embedder.js';
import { createLogger } from '../logger.js';

export interface AdminContext {
  db: Database;
  config: Config;
  actor: AuditActor;
}

const handle = z.string().min(1).max(63);
const limit = z.number().int().min(0).max(1_000_000_000).optional();

async function userIdOf(db: Database, name: string): Promise<string> {
  const user = await findUserByHandle(db, name);
  if (user === undefined) throw new ExaiError('not_found', `No user with handle ${JSON.stringify(name)}; create it with \`exai users create ${name}\`.`);
  return user.id;
}

function operation<S extends z.ZodType, R>(input: S, run: (context: AdminContext, input: z.infer<S>) => Promise<R>) {
  return { input, run };
}

export const adminOperations = {
  'users.create': operation(z.object({ handle, displayName: z.string().max(200).optional() }), (context, input) =>
    createUser(context.db, input.handle, input.displayName, context.actor),
  ),
  'users.list': operation(z.object({}), (context) => listUsers(context.db)),
  'users.delete': operation(z.object({ handle }), (context, input) => deleteUser(context.db, input.handle, context.actor)),
  'keys.create': operation(
    z.object({
      user: handle,
      scopes: z.array(z.enum(allScopes)).min(1).optional(),
      name: z.string().max(200).optional(),
      expiresInMs: z.number().int().positive().max(maxKeyDurationMs).optional(),
      requestsPerMinute: limit,
      tokensPerMinute: limit,
      concurrentCalls: limit,
    }),
    async (context, input) =>
      createApiKey(
        context.db,
        {
          userId: await userIdOf(context.db, input.user),
          scopes: (input.scopes ?? [...defaultUserScopes]) as Scope[],
          name: input.name,
          expiresInMs: input.expiresInMs,
          limits: {
            requestsPerMinute: input.requestsPerMinute ?? null,
            tokensPerMinute: input.tokensPerMinute ?? null,
            concurrentCalls: input.concurrentCalls ?? null,
          },
        },
        context.actor,
      ),
  ),
  'keys.list': operation(z.object({ user: handle.optional() }), async (context, input) =>
    listApiKeys(context.db, input.user === undefined ? undefined : await userIdOf(context.db, input.user)),
  ),
  'keys.revoke': operation(z.object({ key: z.string().min(1).max(200) }), (context, input) => revokeApiKey(context.db, input.key, context.actor)),
  'keys.rotate': operation(z.object({ key: z.string().min(1).max(200), graceMs: z.number().int().min(0).max(maxKeyDurationMs).optional() }), (context, input) =>
    rotateApiKey(context.db, input.key, input.graceMs ?? context.config.auth.rotationGraceMs, context.actor),
  ),
  'audit.list': operation(z.object({ limit: z.number().int().min(1).max(10_000), action: z.string().max(100).optional() }), (context, input) =>
    listAudit(context.db, input),
  ),
  'audit.verify': operation(z.object({}), (context) => verifyAudit(context.db)),
  // Background jobs: pg-boss's tables, read and changed as the database's owner (they hold no user data).
  'jobs.list': operation(
    z.object({ state: z.enum(jobStates).optional(), queue: z.string().regex(queueNamePattern).optional(), limit: z.number().int().min(1).max(10_000).optional() }),
    (context, input) => listJobs(context.db, input),
  ),
  'jobs.retry': operation(z.object({ id: z.string().max(200) }), (context, input) => retryJob(context.db, input.id, context.actor)),
  // Search: embed up to `batches` batches of messages, then of file chunks, that have no vector for the configured model yet.
  'search.reindex': operation(z.object({ batches: z.number().int().min(1).max(100).optional() }), async (context, input) => {
    const embedder = openEmbedder(context.config);
    const deps = { db: context.db, embedder, logger: createLogger('silent') };
    const messages = await indexPendingMessages(deps, { maxBatches: input.batches ?? 10 });
    // Files' text once the messages are done: new turns are what users search for most.
    const chunks = messages.remaining === 0 ? await indexPendingFileChunks(deps, { maxBatches: input.batches ?? 10 }) : { indexed: 0, remaining: await countPendingFileWork(context.db, embedder.model) };
    // A backlog's missing index is built once all of it is embedded (see ensureModelIndex); a failed
    // build is reported, and the embedding done stays.
    const built: { index: ModelIndexState | 'failed'; error?: string } =
      messages.remaining === 0 && chunks.remaining === 0 ? await indexAfterBackfill(context.db, embedder) : { index: await modelIndexState(context.db, embedder) };
    return { ...messages, chunks_indexed: chunks.indexed, chunks_remaining: chunks.remaining, model: embedder.model, index: built.index, ...(built.error === undefined ? {} : { index_error: built.error }) };
  }),
  // Performance, usage and alert events as the operator sees them: everyone's, or one user's.
  ...statsOperations,
};

export type AdminOperationName = keyof typeof adminOperations;
export type AdminInput<N extends AdminOperationName> = z.input<(typeof adminOperations)[N]['input']>;
export type AdminResult<N extends AdminOperationName> = Awaited<ReturnType<(typeof adminOperations)[N]['run']>>;

export function isAdminOperation(name: string): name is AdminOperationName {
  return Object.hasOwn(adminOperations, name);
}

/** Validates the input and runs the operation. */
export async function runAdminOperation<N extends AdminOperationName>(context: AdminContext, name: N, input: unknown): Promise<AdminResult<N>> {
  const spec = adminOperations[name];
  const parsed = spec.input.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'input'}: ${issue.message}`).join('; ');
    throw new ExaiError('invalid_argument', `Invalid input for ${name}: ${problems}.`);
  }
  return (spec.run as (context: AdminContext, input: unknown) => Promise<AdminResult<N>>)(context, parsed.data);
}
