/** `exai search reindex`: embed every message that has no vector for the configured model, with progress. */
import type { Command } from 'commander';
import { runAdmin } from '../data-access.js';
import type { CliContext } from '../context.js';
import { printData } from '../output.js';
import { cliActor } from './admin-actor.js';

export function registerSearch(program: Command, context: CliContext): void {
  const search = program.command('search').description('semantic search over conversations: the index');

  search
    .command('reindex')
    .description('embed the messages that have no vector yet for the configured model; safe to stop and run again')
    .option('--json', 'print the result as JSON (progress still goes to stderr)')
    .action(async (options: { json?: boolean }) => {
      const config = context.config();
      const logger = context.logger(config, 'search');
      let indexed = 0;
      let last: { indexed: number; remaining: number; model: string } | undefined;
      // A round at a time, so progress shows and an interrupted run loses at most one round.
      for (;;) {
        last = await runAdmin(config, logger, 'search.reindex', { batches: 10 }, cliActor());
        indexed += last.indexed;
        process.stderr.write(`embedded ${indexed} message${indexed === 1 ? '' : 's'} with ${last.model}, ${last.remaining} left\n`);
        if (last.remaining === 0 || last.indexed === 0) break;
      }
      const result = { indexed, remaining: last.remaining, model: last.model };
      printData(result, options, () =>
        last!.remaining === 0 ? `Every message has a vector for ${result.model} (${indexed} embedded now).` : `${indexed} embedded; ${result.remaining} could not be embedded yet.`,
      );
    });
}
