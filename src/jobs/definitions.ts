/** Checks job definitions and runner options before anything touches the database, and fills in defaults. */
import { createRequire } from 'node:module';
import { ExaiError } from '../errors.js';
import { queueNamePattern } from './schema.js';
import type { JobDefinition, JobRunnerOptions } from './types.js';

export interface ResolvedDefinition {
  name: string;
  run: JobDefinition['run'];
  retryLimit: number;
  retryDelaySeconds: number;
  expireInSeconds: number;
  schedule: string | undefined;
  scheduleData: object;
  singleton: boolean;
  concurrency: number;
}

interface CronParser {
  parseExpression(expression: string, options: { tz: string }): unknown;
}

// The parser pg-boss itself schedules with (its dependency, resolved from pg-boss), so a schedule that
// passes here is one pg-boss accepts, and it is refused before anything touches the database.
const requireFromBoss = createRequire(createRequire(import.meta.url).resolve('pg-boss'));
const cronParser = requireFromBoss('cron-parser') as CronParser;

function invalid(message: string): ExaiError {
  return new ExaiError('invalid_argument', message);
}

function wholeNumber(where: string, field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${where}: ${field} must be a whole number from ${min} to ${max} (got ${JSON.stringify(value) ?? String(value)}).`);
  }
  return value;
}

function isPlainObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function checkQueueName(name: unknown, where: string): string {
  if (typeof name !== 'string' || !queueNamePattern.test(name)) {
    throw invalid(`${where}: the name must be 1-100 characters of a-z, 0-9, '_', '.' and '-', starting with a letter or digit (got ${JSON.stringify(name) ?? String(name)}).`);
  }
  return name;
}

function checkSchedule(schedule: unknown, where: string): string {
  const fields = typeof schedule === 'string' ? schedule.trim().split(/\s+/) : [];
  const expected = `${where}: schedule must be a cron expression of 5 fields (minute hour day-of-month month day-of-week, in UTC), such as "*/15 * * * *"`;
  // cron-parser would also take a sixth (seconds) field, which pg-boss's once-a-minute cron cannot honour.
  if (typeof schedule !== 'string' || fields.length !== 5) throw invalid(`${expected} (got ${JSON.stringify(schedule) ?? String(schedule)}).`);
  const expression = fields.join(' ');
  try {
    cronParser.parseExpression(expression, { tz: 'UTC' });
  } catch (error) {
    throw invalid(`${expected}; ${JSON.stringify(schedule)} is not: ${(error as Error).message}.`);
  }
  return expression;
}

export function resolveDefinitions(definitions: readonly JobDefinition[]): ResolvedDefinition[] {
  if (!Array.isArray(definitions)) throw invalid('Job definitions must be an array.');
  const seen = new Set<string>();
  return definitions.map((definition: JobDefinition, index) => {
    // Definitions are code, but may be assembled at run time: check what TypeScript cannot.
    if (!isPlainObject(definition as unknown)) throw invalid(`Job definition #${index + 1} is not an object.`);
    const name = checkQueueName(definition.name, `Job definition #${index + 1}`);
    const where = `Job "${name}"`;
    if (seen.has(name)) throw invalid(`${where} is defined twice; each queue has one definition.`);
    seen.add(name);
    if (typeof definition.run !== 'function') throw invalid(`${where}: run must be a function.`);
    if (definition.singleton !== undefined && typeof definition.singleton !== 'boolean') throw invalid(`${where}: singleton must be true or false.`);
    if (definition.scheduleData !== undefined && definition.schedule === undefined) throw invalid(`${where}: scheduleData needs a schedule.`);
    if (definition.scheduleData !== undefined && !isPlainObject(definition.scheduleData)) throw invalid(`${where}: scheduleData must be an object.`);
    return {
      name,
      run: definition.run,
      retryLimit: wholeNumber(where, 'retryLimit', definition.retryLimit ?? 5, 0, 100),
      retryDelaySeconds: wholeNumber(where, 'retryDelaySeconds', definition.retryDelaySeconds ?? 10, 0, 86_400),
      // pg-boss refuses expirations of 24 hours or more.
      expireInSeconds: wholeNumber(where, 'expireInSeconds', definition.expireInSeconds ?? 900, 1, 86_399),
      schedule: definition.schedule === undefined ? undefined : checkSchedule(definition.schedule, where),
      scheduleData: definition.scheduleData ?? {},
      singleton: definition.singleton ?? false,
      concurrency: wholeNumber(where, 'concurrency', definition.concurrency ?? 1, 1, 100),
    };
  });
}

export interface ResolvedRunnerOptions {
  work: boolean;
  pollingIntervalSeconds: number;
  cronIntervalSeconds: number | undefined;
  stopTimeoutSeconds: number;
}

export function resolveRunnerOptions(options: JobRunnerOptions): ResolvedRunnerOptions {
  const polling = options.pollingIntervalSeconds ?? 2;
  // pg-boss polls at most every 500 ms.
  if (typeof polling !== 'number' || !Number.isFinite(polling) || polling < 0.5 || polling > 3600) {
    throw invalid(`Job runner: pollingIntervalSeconds must be from 0.5 to 3600 (got ${JSON.stringify(polling) ?? String(polling)}).`);
  }
  return {
    work: options.work ?? true,
    pollingIntervalSeconds: polling,
    cronIntervalSeconds: options.cronIntervalSeconds === undefined ? undefined : wholeNumber('Job runner', 'cronIntervalSeconds', options.cronIntervalSeconds, 1, 45),
    stopTimeoutSeconds: wholeNumber('Job runner', 'stopTimeoutSeconds', options.stopTimeoutSeconds ?? 30, 1, 3600),
  };
}
