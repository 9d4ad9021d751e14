import type { Command } from 'commander';
import { runStdio } from '../../mcp/stdio.js';
import type { CliContext } from '../context.js';

export function registerStdio(program: Command, context: CliContext): void {
  program
    .command('stdio')
    .description('serve MCP over stdin/stdout, for clients that launch exai (relays to the embedded database owner, starting it if needed)')
    .action(async () => {
      const config = context.config();
      await runStdio(config, context.logger(config, 'stdio'));
    });
}
