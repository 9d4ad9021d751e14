/** The background job runner's public shapes: what a job is, what runs it, what an operator sees. */
import type { Database } from '../db/types.js';
import type { Logger } from '../logger.js';

export interface JobContext {
  jobId: string;
  /** 0 on the first try */
  retryCount: number;
  /** Aborted when the job outlives `expireInSeconds` (it is then failed and retried) or the runner stops without it. */
  signal: AbortSignal;
}

export interface JobDefinition<T extends object = object> {
  /** Queue name: [a-z0-9_.-], starting with a letter or digit. */
  name: string;
  run(data: T, context: JobContext): Promise<void>;
  /** Retries after the first try; default 5. */
  retryLimit?: number;
  /** Default 10, doubled each retry (with jitter: the n-th retry waits between delay·2ⁿ⁻¹ and delay·2ⁿ). 0 retries at once. */
  retryDelaySeconds?: number;
  /** Default 900: a job running longer is failed (and retried). Below 24 hours. */
  expireInSeconds?: number;
  /** cron expression (5 fields, pg-boss syntax, UTC); the runner keeps exactly one schedule per name */
  schedule?: string;
  scheduleData?: T;
  /** singleton-style: at most one job of this queue queued/active at a time (pg-boss policy) */
  singleton?: boolean;
  /** Jobs of this queue run at once in one runner; default 1. */
  concurrency?: number;
}

export interface SendOptions {
  /** With `singleton`, jobs with different keys do not exclude each other. */
  singletonKey?: string;
  startAfterSeconds?: number;
}

export interface JobRunner {
  /** The job's id, or null when a singleton queue already holds a waiting job (nothing was queued). */
  send<T extends object>(name: string, data: T, options?: SendOptions): Promise<string | null>;
  /** jobs waiting or running per queue, for metrics */
  queueDepth(): Promise<Record<string, number>>;
  /** graceful: waits (bounded) for running jobs */
  stop(): Promise<void>;
}

export interface JobRunnerOptions {
  db: Database;
  logger: Logger;
  definitions: JobDefinition[];
  /** Default true; false = only send (the CLI, or an instance that must not work). */
  work?: boolean;
  /** How often an idle worker asks for a job; default 2, at least 0.5. */
  pollingIntervalSeconds?: number;
  /** How often schedules are checked and their jobs handed on; whole seconds 1-45 (default 30 and 5). */
  cronIntervalSeconds?: number;
  /** How long stop() waits for running jobs; default 30. */
  stopTimeoutSeconds?: number;
}

/** pg-boss's job states; `failed` after the last retry is the dead-letter state. */
export const jobStates = ['created', 'retry', 'active', 'completed', 'cancelled', 'failed'] as const;
export type JobState = (typeof jobStates)[number];

/** One job as `exai jobs list` shows it, from the live table or the archive. */
export interface JobSummary {
  id: string;
  queue: string;
  state: JobState;
  retryCount: number;
  retryLimit: number;
  createdOn: string;
  startedOn: string | null;
  completedOn: string | null;
  /** The error of a failed job, or what a finished job returned; truncated. */
  message: string | null;
  /** True once pg-boss has moved the job to its archive (it is deleted from there when retention ends). */
  archived: boolean;
}
