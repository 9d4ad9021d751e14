/** `exai audit …`: read the audit log and check that nobody has edited it. */
import type { Command } from 'commander';
import { runAdmin } from '../data-access.js';
import type { CliContext } from '../context.js';
import { printData, table } from '../output.js';
import { limitOption } from '../options.js';
import { cliActor } from './admin-actor.js';

export function registerAudit(program: Command, context: CliContext): void {
  const audit = program.command('audit').description('the append-only audit log');

  audit
    .command('list')
    .description('the latest entries, newest first')
    .option('--limit <n>', 'how many (1-10000)', limitOption(10_000))
    .option('--action <name>', 'only this action or family, such as auth or key.create')
    .option('--json', 'print JSON')
    .action(async (options: { limit?: number; action?: string; json?: boolean }) => {
      const config = context.config();
      const input = { limit: options.limit ?? 50, ...(options.action !== undefined && { action: options.action }) };
      const entries = await runAdmin(config, context.logger(config, 'audit'), 'audit.list', input, cliActor());
      printData(entries, options, () =>
        entries.length === 0
          ? options.action === undefined
            ? 'The audit log is empty.'
            : `No entries for action ${JSON.stringify(options.action)}. Actions: auth.failure, auth.locked_out, key.create, key.revoke, key.rotate, user.create, user.delete, thread.delete, job.retry, metrics.rebuild; a family such as key matches them all.`
          : table(
              ['seq', 'at', 'actor', 'action', 'target', 'outcome', 'source'],
              entries.map((entry) => [String(entry.seq), entry.at, entry.actor, entry.action, entry.target ?? '', entry.outcome, entry.source ?? '']),
            ),
      );
    });

  audit
    .command('verify')
    .description('walk the hash chain; exits 1 if any row was edited, removed or reordered')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const config = context.config();
      const result = await runAdmin(config, context.logger(config, 'audit'), 'audit.verify', {}, cliActor());
      printData(result, options, () =>
        result.ok
          ? `The audit log is intact: ${result.rows} row(s)${result.head ? `, head #${result.head.seq} ${result.head.hash}` : ''}.`
          : `The audit log has been tampered with: row #${result.firstBad!.seq}: ${result.firstBad!.problem}.`,
      );
      if (!result.ok) context.exitCode = 1;
    });
}
