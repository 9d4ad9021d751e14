/**
 * The durable job runner (pg-boss on exai's own database) on embedded PGlite and
 * on PostgreSQL: jobs outlive a restart, run exactly once with two runners,
 * retry with growing delays into the dead-letter state that `listJobs` and
 * `exai jobs list --failed` show, and cron fires once per slot. Two runners
 * share one PGlite instance (as one process would) or use separate pools to one
 * PostgreSQL database (as two instances would).
 */
import { rmSync } from 'node:fs';
import PgBoss from 'pg-boss';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { embeddedDataDir } from '../../src/db/open.js';
import { openPglite } from '../../src/db/pglite.js';
import { openPostgres } from '../../src/db/postgres.js';
import type { Database } from '../../src/db/types.js';
import { bossDatabase } from '../../src/jobs/boss-db.js';
import { startJobRunner } from '../../src/jobs/job-runner.js';
import { listJobs, retryJob } from '../../src/jobs/list-jobs.js';
import { jobsSchema } from '../../src/jobs/schema.js';
import type { JobDefinition, JobRunner, JobSummary } from '../../src/jobs/types.js';
import { expectExaiError } from '../support/assertions.js';
import { createPgliteDatabase, silentLogger, storageBackends, waitFor, type StorageBackend, type TestDatabase } from '../support/backends.js';
import { preparedHome, runCli } from '../support/cli.js';
import { captureLogs } from '../support/logs.js';
import { suiteCleanups } from '../support/cleanups.js';

/** The quickest settings pg-boss takes: workers poll every 0.5 s, cron is checked every second. */
const fast = { pollingIntervalSeconds: 0.5, cronIntervalSeconds: 1, stopTimeoutSeconds: 5 } as const;

const cleanups = suiteCleanups();

/** Runners still running at the end of a test are stopped before its database goes. */
const runners: JobRunner[] = [];
afterEach(async () => {
  await Promise.all(runners.splice(0).map((runner) => runner.stop()));
});

async function start(options: Parameters<typeof startJobRunner>[0]): Promise<JobRunner> {
  const runner = await startJobRunner(options);
  runners.push(runner);
  return runner;
}

/** A second connection to the same database: the same PGlite instance, or a pool of its own on PostgreSQL. */
async function secondConnection(backend: StorageBackend, database: TestDatabase): Promise<Database> {
  if (backend.kind === 'pglite') return database.db;
  const db = await openPostgres({ url: database.location, poolMax: 10, connectTimeoutMs: 5000, logger: silentLogger });
  // Some tests close it themselves.
  cleanups.push(() => db.close().catch(() => undefined));
  return db;
}

async function newDatabase(backend: StorageBackend): Promise<TestDatabase> {
  const database = await backend.createDatabase();
  cleanups.push(() => database.destroy());
  return database;
}

async function jobState(db: Database, id: string): Promise<JobSummary | undefined> {
  return (await listJobs(db, { limit: 10_000 })).find((job) => job.id === id);
}

describe('job definitions', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createPgliteDatabase();
    cleanups.push(() => database.destroy());
  });

  const run = async () => undefined;
  const refusals: [string, Partial<JobDefinition>[], RegExp][] = [
    ['an upper-case name', [{ name: 'Send-Mail' }], /name must be 1-100 characters of a-z, 0-9/],
    ['a name with a space', [{ name: 'send mail' }], /name must be/],
    ['pg-boss’s internal prefix', [{ name: '__pgboss__send-it' }], /starting with a letter or digit/],
    ['a duplicate', [{ name: 'twice' }, { name: 'twice' }], /Job "twice" is defined twice/],
    ['no run function', [{ name: 'lazy', run: undefined }], /Job "lazy": run must be a function/],
    ['a negative retryLimit', [{ name: 'r', retryLimit: -1 }], /Job "r": retryLimit must be a whole number from 0 to 100 \(got -1\)/],
    ['a fractional retryDelaySeconds', [{ name: 'r', retryDelaySeconds: 1.5 }], /retryDelaySeconds must be a whole number from 0 to 86400 \(got 1.5\)/],
    ['a day-long expiry', [{ name: 'r', expireInSeconds: 86_400 }], /expireInSeconds must be a whole number from 1 to 86399/],
    ['zero concurrency', [{ name: 'r', concurrency: 0 }], /concurrency must be a whole number from 1 to 100 \(got 0\)/],
    ['a four-field schedule', [{ name: 'c', schedule: '* * * *' }], /Job "c": schedule must be a cron expression of 5 fields/],
    ['a six-field schedule', [{ name: 'c', schedule: '*/5 * * * * *' }], /schedule must be a cron expression of 5 fields/],
    ['minute 61', [{ name: 'c', schedule: '61 * * * *' }], /"61 \* \* \* \*" is not: Constraint error/],
    ['scheduleData without a schedule', [{ name: 'c', scheduleData: {} }], /Job "c": scheduleData needs a schedule/],
  ];

  for (const [what, definitions, message] of refusals) {
    it(`refuses ${what} before touching the database`, async () => {
      const error = await expectExaiError(startJobRunner({ db: database.db, logger: silentLogger, definitions: definitions.map((definition) => ({ run, ...definition }) as JobDefinition) }));
      expect(error.code).toBe('invalid_argument');
      expect(error.message).toMatch(message);
    });
  }

  it('refuses runner settings pg-boss cannot honour', async () => {
    const definitions = [{ name: 'ok', run }];
    expect((await expectExaiError(startJobRunner({ db: database.db, logger: silentLogger, definitions, pollingIntervalSeconds: 0.1 }))).message).toMatch(
      /pollingIntervalSeconds must be from 0.5 to 3600 \(got 0.1\)/,
    );
    expect((await expectExaiError(startJobRunner({ db: database.db, logger: silentLogger, definitions, cronIntervalSeconds: 60 }))).message).toMatch(
      /cronIntervalSeconds must be a whole number from 1 to 45 \(got 60\)/,
    );
    // Nothing was created by any refused start.
    const schema = await database.db.query<{ present: boolean }>(`SELECT to_regnamespace('${jobsSchema}') IS NOT NULL AS present`);
    expect(schema.rows[0]!.present).toBe(false);
    expect(await listJobs(database.db, {})).toEqual([]);
  });

  it('refuses to send to an unknown queue or with bad options', async () => {
    const runner = await start({ db: database.db, logger: silentLogger, definitions: [{ name: 'known', run }], work: false });
    expect((await expectExaiError(runner.send('unknown', {}))).message).toMatch(/No job named "unknown" is defined \(defined: known\)/);
    expect((await expectExaiError(runner.send('known', [] as unknown as object))).message).toMatch(/data must be an object/);
    expect((await expectExaiError(runner.send('known', {}, { startAfterSeconds: -1 }))).message).toMatch(/startAfterSeconds must be a whole number/);
    await runner.stop();
    expect((await expectExaiError(runner.send('known', {}))).message).toMatch(/The job runner has stopped/);
  });
});

describe.each(storageBackends())('job runner on $name', (backend) => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await newDatabase(backend);
  });

  it('keeps a job sent while no worker runs through a restart, and runs it', async () => {
    const ran: { data: object; jobId: string; retryCount: number }[] = [];
    const definitions: JobDefinition[] = [
      {
        name: 'restart.probe',
        async run(data, context) {
          ran.push({ data, jobId: context.jobId, retryCount: context.retryCount });
        },
      },
    ];
    const sender = await startJobRunner({ db: database.db, logger: silentLogger, definitions, work: false, ...fast });
    const id = await sender.send('restart.probe', { n: 1 });
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await sender.queueDepth()).toEqual({ 'restart.probe': 1 });
    await sender.stop();

    // The database itself is closed and opened again, as a restarted server would.
    const db = await database.reopen();
    expect((await jobState(db, id!))?.state).toBe('created');
    const worker = await start({ db, logger: silentLogger, definitions, ...fast });
    await waitFor(() => ran.length === 1, 20_000, 'the job to run after the restart');
    expect(ran).toEqual([{ data: { n: 1 }, jobId: id, retryCount: 0 }]);
    await waitFor(async () => (await jobState(db, id!))?.state === 'completed', 10_000, 'the job to be recorded as completed');
    expect(await worker.queueDepth()).toEqual({ 'restart.probe': 0 });
  });

  it('runs 100 jobs with two runners exactly once each, the two starting together on a new database', async () => {
    const fresh = await newDatabase(backend);
    const other = await secondConnection(backend, fresh);
    const runs = new Map<number, string[]>();
    const definitionsFor = (runner: string): JobDefinition<{ i: number }>[] => [
      {
        name: 'fanout',
        concurrency: 2,
        async run(data) {
          runs.set(data.i, [...(runs.get(data.i) ?? []), runner]);
        },
      },
    ];
    // Both install pg-boss's schema and declare their queues at the same moment.
    const [first, second] = await Promise.all([
      start({ db: fresh.db, logger: silentLogger, definitions: definitionsFor('first') as JobDefinition[], ...fast }),
      start({ db: other, logger: silentLogger, definitions: definitionsFor('second') as JobDefinition[], ...fast }),
    ]);
    const ids = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? first! : second!).send('fanout', { i })));
    expect(new Set(ids).size).toBe(100);
    await waitFor(async () => (await first!.queueDepth()).fanout === 0, 60_000, 'every job to finish');
    expect([...runs.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    const twice = [...runs.entries()].filter(([, by]) => by.length !== 1);
    expect(twice, 'jobs that ran more than once').toEqual([]);
    const completed = await listJobs(fresh.db, { queue: 'fanout', state: 'completed', limit: 1000 });
    expect(completed).toHaveLength(100);
  });

  it('retries a failing job with growing delays, then keeps it as failed (also once archived) until retried', async () => {
    const logs = captureLogs();
    const tries: { at: number; retryCount: number }[] = [];
    let healed = false;
    const definitions: JobDefinition[] = [
      {
        name: 'flaky',
        retryLimit: 2,
        retryDelaySeconds: 1,
        async run(_data, context) {
          tries.push({ at: Date.now(), retryCount: context.retryCount });
          if (!healed) throw new Error(`disk full on try ${context.retryCount} (while using sk-abcdefgh12345678)`);
        },
      },
    ];
    const runner = await start({ db: database.db, logger: logs.logger, definitions, ...fast });
    const id = (await runner.send('flaky', { file: 'a' }))!;
    await waitFor(async () => (await jobState(database.db, id))?.state === 'failed', 30_000, 'the job to fail for good');

    expect(tries.map((attempt) => attempt.retryCount)).toEqual([0, 1, 2]);
    // pg-boss's backoff: the n-th retry waits at least delay·2ⁿ⁻¹ (and less than twice that).
    expect(tries[1]!.at - tries[0]!.at).toBeGreaterThanOrEqual(1000 - 50);
    expect(tries[2]!.at - tries[1]!.at).toBeGreaterThanOrEqual(2000 - 50);

    const [failed] = await listJobs(database.db, { state: 'failed', queue: 'flaky' });
    expect(failed).toMatchObject({ id, queue: 'flaky', state: 'failed', retryCount: 2, retryLimit: 2, archived: false });
    expect(failed!.message).toMatch(/^disk full on try 2 \(while using \[redacted\]\)$/);
    expect(failed!.completedOn).not.toBeNull();

    const failures = logs.lines().filter((line) => line.queue === 'flaky');
    expect(failures.map((line) => line.msg)).toEqual([
      'job failed; it will be retried',
      'job failed; it will be retried',
      'job failed on its last try; `exai jobs list --failed` shows it',
    ]);
    expect(JSON.stringify(logs.lines())).not.toContain('sk-abcdefgh');
    expect(JSON.stringify(logs.lines())).not.toContain('"file"');

    // pg-boss's maintenance moves it to the archive (here at once); it is still listed, and can be retried from there.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const maintenance = new PgBoss({ db: bossDatabase(database.db, silentLogger), schema: jobsSchema, archiveFailedAfterSeconds: 1, supervise: false, schedule: false });
    await maintenance.start();
    await maintenance.archive();
    await maintenance.stop({ graceful: false });
    expect((await listJobs(database.db, { state: 'failed', queue: 'flaky' }))[0]).toMatchObject({ id, state: 'failed', archived: true, message: failed!.message });

    healed = true;
    expect(await retryJob(database.db, id)).toEqual({ id, queue: 'flaky', fromArchive: true });
    await waitFor(async () => (await jobState(database.db, id))?.state === 'completed', 20_000, 'the retried job to complete');
    expect(tries.map((attempt) => attempt.retryCount)).toEqual([0, 1, 2, 3]);
    expect(await listJobs(database.db, { state: 'failed', queue: 'flaky' })).toEqual([]);
    expect((await expectExaiError(retryJob(database.db, id))).message).toMatch(/is completed, not failed/);
    expect((await expectExaiError(retryJob(database.db, '00000000-0000-4000-8000-000000000000'))).code).toBe('not_found');
  });

  it('fails a try that outlives expireInSeconds, aborts its signal, and retries it', async () => {
    const tries: string[] = [];
    const runner = await start({
      db: database.db,
      logger: silentLogger,
      definitions: [
        {
          name: 'slow',
          expireInSeconds: 1,
          retryDelaySeconds: 0,
          async run(_data, context) {
            if (context.retryCount > 0) {
              tries.push(`try ${context.retryCount} done`);
              return;
            }
            await new Promise((resolve) => context.signal.addEventListener('abort', resolve));
            tries.push(`try 0 aborted: ${(context.signal.reason as Error).message}`);
          },
        },
      ],
      ...fast,
    });
    const id = (await runner.send('slow', {}))!;
    await waitFor(async () => (await jobState(database.db, id))?.state === 'completed', 20_000, 'the retried job to complete');
    expect(tries).toEqual(['try 0 aborted: Job slow ran longer than 1 s.', 'try 1 done']);
  });

  it('stops gracefully: waits for a running job, and only up to its timeout', async () => {
    const events: string[] = [];
    let release!: () => void;
    const finishing = new Promise<void>((resolve) => (release = resolve));
    const definitions: JobDefinition[] = [
      {
        name: 'patient',
        async run() {
          events.push('started');
          await finishing;
          events.push('finished');
        },
      },
      {
        name: 'stubborn',
        retryLimit: 1,
        async run(_data, context) {
          events.push('stubborn started');
          await new Promise((resolve) => context.signal.addEventListener('abort', resolve));
          events.push(`stubborn aborted: ${(context.signal.reason as Error).message}`);
        },
      },
    ];
    const runner = await startJobRunner({ db: database.db, logger: silentLogger, definitions, ...fast, stopTimeoutSeconds: 1 });
    const patient = (await runner.send('patient', {}))!;
    await waitFor(() => events.includes('started'), 20_000, 'the job to start');
    const stopped = runner.stop();
    setTimeout(release, 200);
    await stopped;
    expect(events).toEqual(['started', 'finished']);
    await waitFor(async () => (await jobState(database.db, patient))?.state === 'completed', 10_000, 'the job to be recorded as completed');

    const again = await start({ db: database.db, logger: silentLogger, definitions, ...fast, stopTimeoutSeconds: 1 });
    const stubborn = (await again.send('stubborn', {}))!;
    await waitFor(() => events.includes('stubborn started'), 20_000, 'the stubborn job to start');
    await again.stop();
    expect(events.at(-1)).toBe('stubborn aborted: The job runner stopped.');
    // The unfinished try failed on the way out (pg-boss's "shut down while active", then the abort), so it will run again.
    expect(await jobState(database.db, stubborn)).toMatchObject({ state: 'retry', retryCount: 0, message: 'The job runner stopped.' });
  });

  it('survives losing the database under a running job: nothing crashes, the job is not lost', async () => {
    const logs = captureLogs();
    // The runner gets a connection of its own to lose (on PGlite: the instance itself, opened again below).
    const db = await secondConnection(backend, database);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let started = false;
    const runner = await start({
      db,
      logger: logs.logger,
      definitions: [
        {
          name: 'orphan',
          async run() {
            started = true;
            await held;
          },
        },
      ],
      ...fast,
    });
    const id = (await runner.send('orphan', {}))!;
    await waitFor(() => started, 20_000, 'the job to start');
    await db.close();
    // The job ends after its database went away: pg-boss records the result without awaiting it, so a
    // rejection there would be unhandled and end the process (vitest reports any unhandled rejection).
    release();
    await waitFor(() => logs.lines().some((line) => line.msg === 'could not record a job as finished; it will be retried once it expires'), 10_000, 'the warning');
    await runner.stop();

    const reader = backend.kind === 'pglite' ? await database.reopen() : database.db;
    // Still active: once it expires, pg-boss's maintenance fails it into a retry.
    expect(await jobState(reader, id)).toMatchObject({ state: 'active', retryCount: 0 });
  });

  it('fires a cron schedule once per slot with two runners, keeping one schedule per name', async () => {
    // Everything below fits in one minute when it starts by second 50 of one (pg-boss cron slots are minutes).
    const second = async () => Number((await database.db.query<{ s: string }>('SELECT extract(second FROM clock_timestamp()) AS s')).rows[0]!.s);
    const now = await second();
    if (now > 50) await new Promise((resolve) => setTimeout(resolve, (61 - now) * 1000));

    const other = await secondConnection(backend, database);
    const ticks: string[] = [];
    const definitionsFor = (runner: string): JobDefinition[] => [
      {
        name: 'tick',
        schedule: '* * * * *',
        scheduleData: { from: 'cron' },
        async run(data) {
          expect(data).toEqual({ from: 'cron' });
          ticks.push(runner);
        },
      },
    ];
    await Promise.all([
      start({ db: database.db, logger: silentLogger, definitions: definitionsFor('first'), ...fast }),
      start({ db: other, logger: silentLogger, definitions: definitionsFor('second'), ...fast }),
    ]);
    await waitFor(() => ticks.length > 0, 20_000, 'the schedule to fire');
    // Several more cron checks by both runners within the same minute add nothing.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    expect(ticks).toHaveLength(1);
    const schedules = await database.db.query(`SELECT name, cron FROM ${jobsSchema}.schedule`);
    expect(schedules.rows).toEqual([{ name: 'tick', cron: '* * * * *' }]);
  });

  it('drops the schedule of a definition that no longer has one', async () => {
    await start({ db: database.db, logger: silentLogger, definitions: [{ name: 'tick', run: async () => undefined }], ...fast });
    const schedules = await database.db.query(`SELECT name FROM ${jobsSchema}.schedule`);
    expect(schedules.rows).toEqual([]);
  });
});

describe('exai jobs list (the CLI, embedded database)', () => {
  it('shows a failed job with its error, as JSON and as a table', async () => {
    const home = await preparedHome();
    cleanups.push(async () => rmSync(home, { recursive: true, force: true }));
    const db = await openPglite(embeddedDataDir(home));
    let id: string;
    try {
      const runner = await startJobRunner({
        db,
        logger: silentLogger,
        definitions: [{ name: 'doomed', retryLimit: 0, run: async () => Promise.reject(new Error('the mail server said no')) }],
        ...fast,
      });
      id = (await runner.send('doomed', {}))!;
      await waitFor(async () => (await jobState(db, id))?.state === 'failed', 20_000, 'the job to fail');
      await runner.stop();
    } finally {
      await db.close();
    }

    const json = await runCli(['jobs', 'list', '--failed', '--json'], { EXAI_HOME: home });
    expect(json.code, json.stderr).toBe(0);
    const jobs = JSON.parse(json.stdout) as JobSummary[];
    expect(jobs).toEqual([expect.objectContaining({ id, queue: 'doomed', state: 'failed', retryCount: 0, retryLimit: 0, message: 'the mail server said no' })]);

    const text = await runCli(['jobs', 'list', '--state', 'failed'], { EXAI_HOME: home });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^id\s+queue\s+state/);
    expect(text.stdout).toContain(id);
    expect(text.stdout).toContain('the mail server said no');

    const bad = await runCli(['jobs', 'list', '--state', 'broken'], { EXAI_HOME: home });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--state must be one of created, retry, active, completed, cancelled, failed/);

    const retried = await runCli(['jobs', 'retry', id!], { EXAI_HOME: home });
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stdout).toMatch(new RegExp(`^Job ${id!} of queue doomed is queued for one more try\\.`));
    const after = await openPglite(embeddedDataDir(home));
    try {
      expect(await jobState(after, id!)).toMatchObject({ state: 'retry', retryLimit: 1 });
      const audit = await after.query<{ action: string; target: string; actor: string }>("SELECT action, target, actor FROM exai.audit_log WHERE action = 'job.retry'");
      expect(audit.rows).toEqual([{ action: 'job.retry', target: id!, actor: expect.stringMatching(/^cli:/) }]);
    } finally {
      await after.close();
    }
  });
});
