/**
 * `stats.*` administration operations: the performance and usage reports as
 * the operator sees them (everyone's calls, or one user's), and the alert
 * events. Spread into `adminOperations`, so the CLI reaches them directly or
 * through the owner's internal API like every other operation.
 */
import { z } from 'zod';
import { ExaiError } from '../errors.js';
import { listAlertEvents } from '../metrics/alert-events.js';
import { performanceInputShape, usageInputShape } from '../metrics/report-input.js';
import { performanceReport, usageReport } from '../metrics/reports.js';
import type { StatsScope } from '../metrics/stats-query.js';
import { findUserByHandle } from '../users/users.js';
import type { AdminContext } from './operations.js';

const handle = z.string().min(1).max(63);
/** No user: a scope that reads everyone's calls acts for nobody in particular. */
const nobody = '00000000-0000-0000-0000-000000000000';

/** Everyone's calls, or only those of the user with this handle. */
async function operatorScope(context: AdminContext, user: string | undefined): Promise<StatsScope> {
  if (user === undefined) return { db: context.db, userId: nobody, everyone: true };
  const found = await findUserByHandle(context.db, user);
  if (found === undefined) throw new ExaiError('not_found', `No user with handle ${JSON.stringify(user)}; \`exai users list\` shows them.`);
  return { db: context.db, userId: found.id, everyone: true, onlyUserId: found.id };
}

const performance = z.object({ ...performanceInputShape, user: handle.optional() }).strict();
const usage = z.object({ ...usageInputShape, user: handle.optional() }).strict();
const alerts = z.object({ limit: z.number().int().min(1).max(10_000).optional(), rule: z.string().min(1).max(100).optional() }).strict();

export const statsOperations = {
  'stats.performance': {
    input: performance,
    run: async (context: AdminContext, { user, ...input }: z.infer<typeof performance>) => performanceReport(await operatorScope(context, user), input),
  },
  'stats.usage': {
    input: usage,
    run: async (context: AdminContext, { user, ...input }: z.infer<typeof usage>) => usageReport(await operatorScope(context, user), input),
  },
  'stats.alerts': {
    input: alerts,
    run: (context: AdminContext, input: z.infer<typeof alerts>) => listAlertEvents(context.db, { limit: input.limit ?? 50, rule: input.rule }),
  },
};
