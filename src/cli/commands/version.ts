import type { Command } from 'commander';
import { version } from '../../version.js';
import { printData } from '../output.js';

export function registerVersion(program: Command): void {
  program
    .command('version')
    .description('print the version')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) => {
      printData({ name: 'exai', version, node: process.version }, options, () => `exai ${version} (node ${process.version})`);
    });
}
