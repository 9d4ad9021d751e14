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
import { appendAudit } from '../audit/audit-log.js';
import { dayMs, hourlyRetentionDays, startOfDay } from '../metrics/buckets.js';
import { markWindowStale, rollUpPending } from '../metrics/rollups.js';
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
const instant = z.iso.datetime({ offset: true });
const rebuild = z.object({ from: instant, to: instant.optional() }).strict();

/**
 * Rolls a window up again from what is kept: hours from their raw calls (7 days),
 * days from their hourly rows (90 days). Older buckets are left as they are.
 */
async function rebuildWindow(context: AdminContext, input: z.infer<typeof rebuild>) {
  const now = Date.now();
  const from = new Date(input.from);
  const to = input.to === undefined ? new Date(now) : new Date(input.to);
  const oldest = startOfDay(new Date(now)).getTime() - hourlyRetentionDays * dayMs;
  if (!(from < to)) throw new ExaiError('invalid_argument', `--from (${from.toISOString()}) must be before --to (${to.toISOString()}).`);
  if (from.getTime() < oldest || to.getTime() > now + dayMs) {
    throw new ExaiError(
      'invalid_argument',
      `Only the last ${hourlyRetentionDays} days can be rebuilt (from ${new Date(oldest).toISOString()}): older days keep only their daily rows. Narrow --from and --to.`,
    );
  }
  const marked = await markWindowStale(context.db, from, to);
  const rolled = await rollUpPending(context.db);
  await appendAudit(context.db, context.actor, {
    action: 'metrics.rebuild',
    target: `${from.toISOString()}/${to.toISOString()}`,
    outcome: 'success',
    details: { hours_marked: marked, hours_rebuilt: rolled.hours, days_rebuilt: rolled.days },
  });
  return { from: from.toISOString(), to: to.toISOString(), hours_marked: marked, hours_rebuilt: rolled.hours, days_rebuilt: rolled.days };
}

export const statsOperations = {
  'stats.performance': {
    input: performance,
    run: async (context: AdminContext, { user, ...input }: z.infer<typeof performance>) => performanceReport(await operatorScope(context, user), input),
  },
  'stats.usage': {
    input: usage,
    run: async (context: AdminContext, { user, ...input }: z.infer<typeof usage>) => usageReport(await operatorScope(context, user), input),
  },
  'stats.rebuild': { input: rebuild, run: rebuildWindow },
  'stats.alerts': {
    input: alerts,
    run: (context: AdminContext, input: z.infer<typeof alerts>) => listAlertEvents(context.db, { limit: input.limit ?? 50, rule: input.rule }),
  },
};
