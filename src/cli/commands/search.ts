/** `exai search reindex`: embed every message and file chunk that has no vector for the configured model, with progress. */
import type { Command } from 'commander';
import { runAdmin } from '../data-access.js';
import type { CliContext } from '../context.js';
import { printData } from '../output.js';
import { cliActor } from './admin-actor.js';

export function registerSearch(program: Command, context: CliContext): void {
  const search = program.command('search').description('semantic search over conversations: the index');

  search
    .command('reindex')
    .description('embed the messages and file texts that have no vector yet for the configured model; safe to stop and run again')
    .option('--json', 'print the result as JSON (progress still goes to stderr)')
    .action(async (options: { json?: boolean }) => {
      const config = context.config();
      const logger = context.logger(config, 'search');
      let indexed = 0;
      let chunks = 0;
      let last: { indexed: number; remaining: number; chunks_indexed: number; chunks_remaining: number; model: string; index: string; index_error?: string } | undefined;
      // A round at a time, so progress shows and an interrupted run loses at most one round.
      for (;;) {
        last = await runAdmin(config, logger, 'search.reindex', { batches: 10 }, cliActor());
        indexed += last.indexed;
        chunks += last.chunks_indexed;
        process.stderr.write(
          `embedded ${indexed} message${indexed === 1 ? '' : 's'} (${last.remaining} left) and ${chunks} file chunk${chunks === 1 ? '' : 's'} (${last.chunks_remaining} left) with ${last.model}\n`,
        );
        if (last.index === 'created') process.stderr.write(`built the search index of ${last.model} over its vectors\n`);
        if (last.index === 'building') process.stderr.write(`the search index of ${last.model} is being built by another connection\n`);
        if (last.index === 'failed') process.stderr.write(`could not build the search index of ${last.model} (${last.index_error ?? 'unknown error'}); run this again to retry\n`);
        if ((last.remaining === 0 && last.chunks_remaining === 0) || last.indexed + last.chunks_indexed === 0) break;
      }
      const result = { indexed, remaining: last.remaining, chunks_indexed: chunks, chunks_remaining: last.chunks_remaining, model: last.model, index: last.index };
      if (last.index === 'failed') context.exitCode = 1;
      printData(result, options, () =>
        result.remaining === 0 && result.chunks_remaining === 0
          ? `Every message and file chunk has a vector for ${result.model} (${indexed} messages and ${chunks} chunks embedded now).`
          : `${indexed} messages and ${chunks} file chunks embedded; ${result.remaining} messages and ${result.chunks_remaining} chunks could not be embedded yet.`,
      );
    });
}
