/**
 * Which storage backends the suites run on. Embedded PGlite with the in-process
 * cache always; PostgreSQL with Redis when TEST_DATABASE_URL and TEST_REDIS_URL
 * are set. In CI (CI=true) both must be set and reachable, or the run fails.
 */
export interface ExternalBackends {
  databaseUrl: string;
  redisUrl: string;
}

export function externalBackends(env: NodeJS.ProcessEnv = process.env): ExternalBackends | undefined {
  const databaseUrl = env.TEST_DATABASE_URL;
  const redisUrl = env.TEST_REDIS_URL;
  if (databaseUrl && redisUrl) return { databaseUrl, redisUrl };
  if (env.CI === 'true') {
    throw new Error(
      'CI=true but TEST_DATABASE_URL and TEST_REDIS_URL are not both set: the PostgreSQL and Redis suites must run in CI. ' +
        'Example: TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres TEST_REDIS_URL=redis://127.0.0.1:6379',
    );
  }
  return undefined;
}
