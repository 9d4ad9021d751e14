/**
 * The metrics' background work, as jobs of the durable runner: roll-ups every
 * minute, retention every hour, alert rules every minute. Each is a singleton
 * queue, so with several instances one runs at a time, and each is safe to run
 * again after a crash or a restart mid-run (see rollups.ts, retention.ts).
 */
import type { Database } from '../db/types.js';
import type { JobDefinition } from '../jobs/types.js';
import type { Logger } from '../logger.js';
import type { AlertRule } from './alert-rules.js';
import { evaluateAlerts } from './alerts.js';
import { applyRetention } from './retention.js';
import { rollUpPending } from './rollups.js';

export const metricsJobNames = { rollup: 'metrics.rollup', retention: 'metrics.retention', alerts: 'metrics.alerts' } as const;

export function metricsJobs(deps: { db: Database; logger: Logger; alertRules: readonly AlertRule[] }): JobDefinition[] {
  const { db, logger } = deps;
  const jobs: JobDefinition[] = [
    {
      name: metricsJobNames.rollup,
      schedule: '* * * * *',
      singleton: true,
      retryLimit: 3,
      retryDelaySeconds: 5,
      expireInSeconds: 600,
      async run(_data, { signal }) {
        const result = await rollUpPending(db, { signal });
        if (result.hours + result.days > 0) logger.debug(result, 'metrics rolled up');
      },
    },
    {
      name: metricsJobNames.retention,
      schedule: '7 * * * *',
      singleton: true,
      retryLimit: 3,
      retryDelaySeconds: 60,
      expireInSeconds: 1800,
      async run(_data, { signal }) {
        const result = await applyRetention(db, { logger, signal });
        logger.info(result, 'metrics retention applied');
      },
    },
  ];
  // Even without rules: a rule removed while firing is resolved by the next run.
  jobs.push({
    name: metricsJobNames.alerts,
    schedule: '* * * * *',
    singleton: true,
    retryLimit: 1,
    retryDelaySeconds: 10,
    expireInSeconds: 300,
    async run() {
      await evaluateAlerts(db, deps.alertRules, logger);
    },
  });
  return jobs;
}
