/** `exai jobs …`: background jobs, above all the failed ones (pg-boss's dead-letter state). */
import type { Command } from 'commander';
import { ExaiError } from '../../errors.js';
import { jobStates, type JobState, type JobSummary } from '../../jobs/types.js';
import { runAdmin } from '../data-access.js';
import type { CliContext } from '../context.js';
import { printData, table } from '../output.js';
import { limitOption } from '../options.js';
import { cliActor } from './admin-actor.js';

function stateOption(text: string): JobState {
  if (!(jobStates as readonly string[]).includes(text)) {
    throw new ExaiError('invalid_argument', `--state must be one of ${jobStates.join(', ')} (got ${JSON.stringify(text)}).`);
  }
  return text as JobState;
}

/** One line of at most `max` characters: a table row must not wrap. */
function cell(text: string | null, max: number): string {
  const line = (text ?? '').replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function jobRows(jobs: JobSummary[], state: JobState | undefined, queue: string | undefined): string {
  if (jobs.length === 0) return `No ${state === undefined ? '' : `${state} `}jobs${queue === undefined ? '' : ` in queue ${queue}`}.`;
  return table(
    ['id', 'queue', 'state', 'tries', 'created', 'finished', 'message'],
    jobs.map((job) => [
      job.id,
      job.queue,
      job.archived ? `${job.state} (archived)` : job.state,
      // Tries so far of those allowed: the first try plus retries.
      `${job.retryCount + 1}/${job.retryLimit + 1}`,
      job.createdOn,
      job.completedOn ?? '',
      cell(job.message, 80),
    ]),
  );
}

export function registerJobs(program: Command, context: CliContext): void {
  const jobs = program.command('jobs').description('background jobs: what waits, runs, finished or failed');

  jobs
    .command('list')
    .description('jobs, newest first; failed ones stay listed (from the archive too) until their retention ends')
    .option('--failed', 'only jobs that failed on their last try (same as --state failed)')
    .option('--state <state>', `only this state: ${jobStates.join(', ')}`, stateOption)
    .option('--queue <name>', 'only this queue')
    .option('--limit <n>', 'how many (1-10000, default 50)', limitOption(10_000))
    .option('--json', 'print JSON')
    .action(async (options: { failed?: boolean; state?: JobState; queue?: string; limit?: number; json?: boolean }) => {
      if (options.failed && options.state !== undefined && options.state !== 'failed') {
        throw new ExaiError('invalid_argument', `--failed and --state ${options.state} contradict each other; give one.`);
      }
      const state = options.failed ? 'failed' : options.state;
      const config = context.config();
      const input = {
        limit: options.limit ?? 50,
        ...(state !== undefined && { state }),
        ...(options.queue !== undefined && { queue: options.queue }),
      };
      const list = await runAdmin(config, context.logger(config, 'jobs'), 'jobs.list', input, cliActor());
      printData(list, options, () => jobRows(list, state, options.queue));
    });

  jobs
    .command('retry <id>')
    .description('give a failed job one more try (recorded in the audit log)')
    .option('--json', 'print JSON')
    .action(async (id: string, options: { json?: boolean }) => {
      const config = context.config();
      const retried = await runAdmin(config, context.logger(config, 'jobs'), 'jobs.retry', { id }, cliActor());
      printData(retried, options, () => `Job ${retried.id} of queue ${retried.queue} is queued for one more try${retried.fromArchive ? ' (brought back from the archive)' : ''}.`);
    });
}
