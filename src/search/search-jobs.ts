/**
 * The indexing job: `search.index` embeds what has no vector yet, queued after
 * each stored turn or extracted file text, and run every minute to catch up (a singleton, so several
 * instances never embed the same messages twice at once).
 */
import type { JobDefinition } from '../jobs/types.js';
import { indexPendingFileChunks } from './file-indexer.js';
import { indexPendingMessages, type IndexerDeps } from './indexer.js';
import { indexAfterBackfill } from './open-embedder.js';

export const searchJobNames = { index: 'search.index' } as const;

export function searchJobs(deps: IndexerDeps): JobDefinition[] {
  return [
    {
      name: searchJobNames.index,
      schedule: '* * * * *',
      singleton: true,
      retryLimit: 5,
      retryDelaySeconds: 30,
      expireInSeconds: 1800,
      async run(_data, { signal }) {
        const progress = await indexPendingMessages(deps, { signal, maxBatches: 50 });
        if (progress.indexed > 0) deps.logger.debug(progress, 'messages embedded for search');
        // Then files' text, chunked and embedded; messages first, since new turns are searched for most.
        const files = await indexPendingFileChunks(deps, { signal, maxBatches: 50 });
        if (files.indexed > 0) deps.logger.debug(files, 'file chunks embedded for search');
        // A backlog's index was left for now (see ensureModelIndex): built over all of it at once.
        if (progress.remaining === 0 && files.remaining === 0) {
          const built = await indexAfterBackfill(deps.db, deps.embedder);
          if (built.index === 'created') deps.logger.info({ model: deps.embedder.model }, 'the embedding model\'s index is built');
          if (built.index === 'failed') deps.logger.warn({ err: built.error, model: deps.embedder.model }, 'could not build the embedding model\'s index; search compares vectors without it');
        }
      },
    },
  ];
}
