import type { Command } from 'commander';
import { migrateThroughOwner } from '../data-access.js';
import { printData, table } from '../output.js';
import type { CliContext } from '../context.js';

export function registerMigrate(program: Command, context: CliContext): void {
  program
    .command('migrate')
    .description('apply pending database migrations (serve applies them at start too)')
    .option('--status', 'only show applied and pending migrations')
    .option('--json', 'print JSON')
    .action(async (options: { status?: boolean; json?: boolean }) => {
      const config = context.config();
      const logger = context.logger(config, 'migrate');
      const result = await migrateThroughOwner(config, logger, options.status !== true);
      printData(result, options, () => {
        const rows = result.applied.map((row) => [String(row.version), new Date(row.appliedAt).toISOString(), row.description]);
        const pending = result.pending.map((row) => [String(row.version), 'pending', row.description]);
        const where = result.via === 'direct' ? '' : ` (through the running server at ${result.via})`;
        return `${table(['version', 'applied at', 'description'], [...rows, ...pending])}\n\nSchema version ${result.current} of ${result.latest}${where}.`;
      });
      if (result.pending.length > 0 && options.status !== true) context.exitCode = 1;
    });
}
