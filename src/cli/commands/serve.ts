import type { Command } from 'commander';
import { startServer } from '../../app/server.js';
import type { CliContext } from '../context.js';

export function registerServe(program: Command, context: CliContext): void {
  program
    .command('serve')
    .description('run the HTTP server (health, API) on EXAI_HOST:EXAI_PORT, applying pending migrations first')
    .option('--host <host>', 'listen address (overrides EXAI_HOST)')
    .option('--port <port>', 'listen port (overrides EXAI_PORT)')
    .action(async (options: { host?: string; port?: string }) => {
      const config = context.config({
        ...(options.host === undefined ? {} : { EXAI_HOST: options.host }),
        ...(options.port === undefined ? {} : { EXAI_PORT: options.port }),
      });
      const logger = context.logger(config, 'serve');
      const server = await startServer(config, logger);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          logger.info({ signal }, 'shutting down');
          server.close().then(resolve, (error: unknown) => {
            logger.error({ err: error }, 'error while shutting down');
            context.exitCode = 1;
            resolve();
          });
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
