import type { Command } from 'commander';
import { queryHolder } from '../../embedded/owner-lock.js';
import { servingOwner } from '../../embedded/owner-info.js';
import { isProcessAlive } from '../../embedded/process-alive.js';
import { ExaiError } from '../../errors.js';
import { printData } from '../output.js';
import type { CliContext } from '../context.js';

const stopWaitMs = 20_000;

export function registerStop(program: Command, context: CliContext): void {
  program
    .command('stop')
    .description('stop the server that owns EXAI_HOME (such as the one `exai stdio` starts)')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const config = context.config();
      const holder = await queryHolder(config.home);
      const owner = servingOwner(config.home, holder);
      if (holder === undefined || owner === undefined) {
        const result = { home: config.home, stopped: null };
        printData(result, options, () => `No exai server owns ${config.home}.`);
        return;
      }
      process.kill(owner.pid, 'SIGTERM');
      const deadline = Date.now() + stopWaitMs;
      while (isProcessAlive(owner.pid)) {
        if (Date.now() > deadline) throw new ExaiError('timeout', `The exai server (pid ${owner.pid}) did not stop within ${stopWaitMs / 1000} s.`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      printData({ home: config.home, stopped: owner.pid }, options, () => `Stopped the exai server (pid ${owner.pid}) that owned ${config.home}.`);
    });
}
