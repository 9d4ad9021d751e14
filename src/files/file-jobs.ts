/**
 * The file store's background work as jobs of the durable runner: processing
 * of new objects (sent after each upload, and every minute for any left over),
 * the purge of deleted files every ten minutes and the sweep of orphaned
 * objects every hour, each a singleton so several instances never run it twice
 * at once.
 */
import type { JobDefinition } from '../jobs/types.js';
import { purgeDeletedFiles, sweepOrphanObjects, type CleanupDeps } from './file-cleanup.js';
import { processPendingObjects } from './file-processing.js';

export const fileJobNames = { process: 'files.process', purge: 'files.purge', sweep: 'files.sweep' } as const;

/** Deleted files stay restorable by an operator this long; uploads reuse objects touched this recently. */
export const purgeGraceMs = 60 * 60_000;
/** An object younger than this may belong to an upload whose rows are being written right now. */
export const sweepGraceMs = 24 * 60 * 60_000;

export function fileJobs(deps: CleanupDeps & { onProcessed?: () => void }): JobDefinition[] {
  return [
    {
      name: fileJobNames.process,
      schedule: '* * * * *',
      singleton: true,
      retryLimit: 5,
      retryDelaySeconds: 30,
      expireInSeconds: 1800,
      async run(_data, { signal }) {
        // Until nothing is pending: one run catches up after a burst of uploads.
        // A failing object counts as tried and is left for a later run, so this ends.
        let processed = 0;
        for (let round = 0; round < 20 && !signal.aborted; round += 1) {
          const done = await processPendingObjects(deps, { limit: 50, signal });
          processed += done;
          if (done === 0) break;
        }
        // Extracted text is searchable once the search indexing job has chunked and embedded it.
        if (processed > 0) deps.onProcessed?.();
      },
    },
    {
      name: fileJobNames.purge,
      schedule: '*/10 * * * *',
      singleton: true,
      retryLimit: 3,
      retryDelaySeconds: 60,
      expireInSeconds: 1800,
      async run(_data, { signal }) {
        await purgeDeletedFiles(deps, { graceMs: purgeGraceMs, signal });
      },
    },
    {
      name: fileJobNames.sweep,
      schedule: '23 * * * *',
      singleton: true,
      retryLimit: 3,
      retryDelaySeconds: 300,
      expireInSeconds: 3600,
      async run(_data, { signal }) {
        await sweepOrphanObjects(deps, { graceMs: sweepGraceMs, signal });
      },
    },
  ];
}
