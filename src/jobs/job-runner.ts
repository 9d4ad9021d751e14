/**
 * The durable job runner: pg-boss 10 on exai's own database (PGlite or
 * PostgreSQL), in the schema `exai_jobs`. Jobs survive restarts, each runs once
 * per try across any number of runners (SKIP LOCKED), failures are retried with
 * exponential backoff, and a job that exhausts its retries stays in state
 * `failed` (the dead-letter state) for `exai jobs list --failed`.
 */
import PgBoss from 'pg-boss';
import { redactSecrets } from '../audit/redact.js';
import { ExaiError } from '../errors.js';
import type { Logger } from '../logger.js';
import { bossDatabase, type BossDatabase } from './boss-db.js';
import { resolveDefinitions, resolveRunnerOptions, type ResolvedDefinition, type ResolvedRunnerOptions } from './definitions.js';
import { declareQueues } from './queues.js';
import { jobsSchema } from './schema.js';
import type { JobRunner, JobRunnerOptions, SendOptions } from './types.js';

/** What pg-boss records for a failed try: the error's name, code and message, scrubbed and bounded; no stack. */
const recordedMessageChars = 2000;

/** An error (or what pg-boss emits: sometimes a copy of one as a plain object) for logs and records, scrubbed. */
function describeError(error: unknown): { name: string; message: string; code?: string; stack?: string } {
  const err = (typeof error === 'object' && error !== null ? error : { message: String(error) }) as { name?: unknown; message?: unknown; code?: unknown; stack?: unknown };
  return {
    name: typeof err.name === 'string' ? err.name : 'Error',
    message: redactSecrets(typeof err.message === 'string' ? err.message : String(error)),
    ...(typeof err.code === 'string' && { code: err.code }),
    ...(typeof err.stack === 'string' && { stack: redactSecrets(err.stack) }),
  };
}

function recordedError(error: unknown): Error {
  const described = describeError(error);
  const recorded = new Error(described.message.slice(0, recordedMessageChars));
  recorded.name = described.name;
  // pg-boss stores what serialize-error makes of this: without a stack, just name, message (and code).
  recorded.stack = undefined;
  if (described.code !== undefined) Object.assign(recorded, { code: described.code });
  return recorded;
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Creates or migrates pg-boss's schema (idempotent; concurrent starts are settled by pg-boss's advisory lock). */
async function installSchema(adapter: BossDatabase, logger: Logger): Promise<void> {
  // An instance without cron or maintenance, so nothing but the schema is touched before the queues exist.
  const installer = new PgBoss({ db: adapter, schema: jobsSchema, migrate: true, schedule: false, supervise: false });
  installer.on('error', (error: Error) => logger.warn({ err: describeError(error) }, 'job runner: installing the schema'));
  await installer.start();
  await installer.stop({ graceful: false });
}

async function syncSchedules(boss: PgBoss, definitions: readonly ResolvedDefinition[]): Promise<void> {
  const scheduled = definitions.filter((definition) => definition.schedule !== undefined);
  // pg-boss keeps one schedule per queue name (an upsert), so restarts and several instances never add up.
  for (const definition of scheduled) await boss.schedule(definition.name, definition.schedule!, definition.scheduleData, { tz: 'UTC' });
  const wanted = new Set(scheduled.map((definition) => definition.name));
  for (const schedule of await boss.getSchedules()) {
    if (!wanted.has(schedule.name)) await boss.unschedule(schedule.name);
  }
}

function isPlainObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export async function startJobRunner(options: JobRunnerOptions): Promise<JobRunner> {
  const definitions = resolveDefinitions(options.definitions);
  const settings: ResolvedRunnerOptions = resolveRunnerOptions(options);
  const { db } = options;
  const logger = options.logger.child({ component: 'jobs' });
  const adapter = bossDatabase(db, logger);

  await installSchema(adapter, logger);
  await declareQueues(db, definitions);

  const cron = settings.cronIntervalSeconds;
  const boss = new PgBoss({
    db: adapter,
    schema: jobsSchema,
    migrate: true,
    // A runner that does not work neither schedules nor maintains: it only sends.
    schedule: settings.work,
    supervise: settings.work,
    pollingIntervalSeconds: settings.pollingIntervalSeconds,
    ...(cron !== undefined && { cronMonitorIntervalSeconds: cron, cronWorkerIntervalSeconds: cron }),
    // Finished jobs move to the archive after 12 h (failed ones too), and leave it 7 days later.
    archiveCompletedAfterSeconds: 12 * 3600,
    archiveFailedAfterSeconds: 12 * 3600,
    deleteAfterDays: 7,
  });
  // Without a listener an 'error' event would throw; these are cron, maintenance and worker-loop failures.
  boss.on('error', (error: Error & { queue?: string }) => logger.warn({ err: describeError(error), queue: error.queue }, 'job runner error'));

  const running = new Set<AbortController>();
  let stopping: Promise<void> | undefined;
  /** pg-boss worker ids per queue, to wake them. */
  const workersOf = new Map<string, string[]>();

  // A pg-boss 10 worker sleeps out its polling interval even after finding a job, which would cap a
  // queue at one job per interval per worker. Waking the worker when its job ends lets a busy queue
  // drain at full speed; an empty fetch still sleeps the whole interval.
  function handlerFor(definition: ResolvedDefinition, slot: number) {
    const wake = () => {
      const id = workersOf.get(definition.name)?.[slot];
      if (id !== undefined && stopping === undefined) boss.notifyWorker(id);
    };
    return async (jobs: PgBoss.JobWithMetadata<object>[]): Promise<void> => {
      const job = jobs[0];
      if (job === undefined) return;
      const controller = new AbortController();
      const expiry = new ExaiError('timeout', `Job ${definition.name} ran longer than ${definition.expireInSeconds} s.`);
      // pg-boss gives up on the try at the same moment; the handler is told to stop.
      const timer = setTimeout(() => controller.abort(expiry), definition.expireInSeconds * 1000);
      timer.unref();
      running.add(controller);
      try {
        await definition.run(job.data, { jobId: job.id, retryCount: job.retryCount, signal: controller.signal });
        // A try cut short (out of time, or the runner stopping) failed, even if the handler then returned quietly.
        if (controller.signal.aborted) throw controller.signal.reason;
      } catch (error) {
        const last = job.retryCount >= job.retryLimit;
        logger.warn(
          { queue: definition.name, jobId: job.id, retryCount: job.retryCount, retryLimit: job.retryLimit, err: describeError(error) },
          last ? 'job failed on its last try; `exai jobs list --failed` shows it' : 'job failed; it will be retried',
        );
        throw recordedError(error);
      } finally {
        clearTimeout(timer);
        running.delete(controller);
        wake();
      }
    };
  }

  await boss.start();
  try {
    if (settings.work) {
      await syncSchedules(boss, definitions);
      for (const definition of definitions) {
        // pg-boss 10 runs one job at a time per worker: `concurrency` workers, each fetching one job.
        const ids: string[] = [];
        workersOf.set(definition.name, ids);
        for (let slot = 0; slot < definition.concurrency; slot += 1) {
          ids.push(await boss.work(definition.name, { batchSize: 1, includeMetadata: true, pollingIntervalSeconds: settings.pollingIntervalSeconds }, handlerFor(definition, slot)));
        }
      }
    }
  } catch (error) {
    await boss.stop({ graceful: false }).catch(() => undefined);
    throw error;
  }
  logger.info({ queues: definitions.map((definition) => definition.name), work: settings.work }, 'job runner started');

  const byName = new Map(definitions.map((definition) => [definition.name, definition]));

  return {
    async send<T extends object>(name: string, data: T, sendOptions: SendOptions = {}): Promise<string | null> {
      if (stopping !== undefined) throw new ExaiError('internal', `The job runner has stopped; job ${name} was not sent.`);
      if (!byName.has(name)) {
        throw new ExaiError('invalid_argument', `No job named ${JSON.stringify(name)} is defined (defined: ${[...byName.keys()].join(', ') || 'none'}).`);
      }
      if (!isPlainObject(data)) throw new ExaiError('invalid_argument', `Job ${name}: data must be an object.`);
      const { singletonKey, startAfterSeconds } = sendOptions;
      if (singletonKey !== undefined && (typeof singletonKey !== 'string' || singletonKey.length === 0 || singletonKey.length > 200)) {
        throw new ExaiError('invalid_argument', `Job ${name}: singletonKey must be 1-200 characters.`);
      }
      if (startAfterSeconds !== undefined && (!Number.isInteger(startAfterSeconds) || startAfterSeconds < 0 || startAfterSeconds > 366 * 86_400)) {
        throw new ExaiError('invalid_argument', `Job ${name}: startAfterSeconds must be a whole number of seconds from 0 to a year (got ${startAfterSeconds}).`);
      }
      const id = await boss.send(name, data, {
        ...(singletonKey !== undefined && { singletonKey }),
        ...(startAfterSeconds !== undefined && startAfterSeconds > 0 && { startAfter: startAfterSeconds }),
      });
      // This process's idle workers look at once instead of at their next poll; other runners poll.
      if (id !== null && !startAfterSeconds) for (const worker of workersOf.get(name) ?? []) boss.notifyWorker(worker);
      return id;
    },

    async queueDepth(): Promise<Record<string, number>> {
      const depth: Record<string, number> = Object.fromEntries(definitions.map((definition) => [definition.name, 0]));
      const result = await db.query<{ name: string; depth: number | string }>(
        `SELECT name, count(*) AS depth FROM ${jobsSchema}.job WHERE name = ANY($1::text[]) AND state < 'completed' GROUP BY name`,
        [definitions.map((definition) => definition.name)],
      );
      for (const row of result.rows) depth[row.name] = Number(row.depth);
      return depth;
    },

    stop(): Promise<void> {
      stopping ??= (async () => {
        const timeoutMs = settings.stopTimeoutSeconds * 1000;
        const deadline = Date.now() + timeoutMs;
        try {
          // Stops fetching, waits for running jobs up to the timeout, then fails what still runs (so it is retried).
          await boss.stop({ graceful: true, timeout: timeoutMs });
        } catch (error) {
          logger.warn({ err: describeError(error) }, 'job runner: stopping');
        }
        // A job fetched just as the stop began still reaches its handler, and pg-boss records
        // results without awaiting them: let both finish before the caller closes the database.
        const settled = () => running.size === 0 && adapter.pendingCount() === 0;
        while (!settled() && Date.now() < deadline) await delay(20);
        const abandoned = running.size;
        for (const controller of running) controller.abort(new ExaiError('cancelled', 'The job runner stopped.'));
        // A second to record how the aborted tries ended.
        const grace = Date.now() + 1000;
        while (abandoned > 0 && !settled() && Date.now() < grace) await delay(20);
        logger.info({ abandoned }, 'job runner stopped');
      })();
      return stopping;
    },
  };
}
