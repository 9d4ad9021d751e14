/** Cleanups a suite registers as it goes (databases, folders, processes), run newest first once its tests are done. */
import { afterAll } from 'vitest';

export interface SuiteCleanups {
  push(cleanup: () => Promise<unknown>): void;
}

/** Call at the top of a file or inside a describe: the cleanups run in that scope's afterAll. */
export function suiteCleanups(): SuiteCleanups {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  return { push: (cleanup) => void cleanups.push(cleanup) };
}
