/** The `exai` command. Data goes to stdout, logs and errors to stderr. */
import { Command, CommanderError } from 'commander';
import { isExaiError } from '../errors.js';
import { version } from '../version.js';
import { createCliContext } from './context.js';
import { registerHealth } from './commands/health.js';
import { registerMigrate } from './commands/migrate.js';
import { registerServe } from './commands/serve.js';
import { registerStdio } from './commands/stdio.js';
import { registerThreads } from './commands/threads.js';
import { registerStop } from './commands/stop.js';
import { registerVersion } from './commands/version.js';
import { registerUsers } from './commands/users.js';
import { registerKeys } from './commands/keys.js';
import { registerAudit } from './commands/audit.js';
import { registerJobs } from './commands/jobs.js';
import { registerSearch } from './commands/search.js';
import { registerStats } from './commands/stats.js';

/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  const context = createCliContext(env);
  const program = new Command('exai')
    .description('exai: second-opinion models for AI coding assistants, with durable conversation memory')
    .version(version, '-v, --version')
    .exitOverride()
    .showHelpAfterError();
  registerServe(program, context);
  registerStdio(program, context);
  registerStop(program, context);
  registerMigrate(program, context);
  registerHealth(program, context);
  registerThreads(program, context);
  registerUsers(program, context);
  registerKeys(program, context);
  registerAudit(program, context);
  registerJobs(program, context);
  registerSearch(program, context);
  registerStats(program, context);
  registerVersion(program);
  try {
    await program.parseAsync(argv);
    return context.exitCode;
  } catch (error) {
    // Usage errors (an unknown option, a bad value, a bad configuration) exit 2; failures exit 1.
    if (error instanceof CommanderError) return error.exitCode === 1 ? 2 : error.exitCode;
    if (isExaiError(error)) {
      process.stderr.write(`exai: ${error.message}\n`);
      return error.code === 'invalid_config' || error.code === 'invalid_argument' ? 2 : 1;
    }
    process.stderr.write(`exai: unexpected error: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
