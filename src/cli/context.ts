import { loadConfig, type Config, type Environment } from '../config.js';
import { createLogger, type Logger } from '../logger.js';

/** What every command needs, built lazily so `--help` works even with a bad configuration. */
export interface CliContext {
  config(overrides?: Environment): Config;
  logger(config: Config, command: string): Logger;
  /** What the process exits with once the command's action has finished. */
  exitCode: number;
}

export function createCliContext(env: Environment): CliContext {
  return {
    exitCode: 0,
    config: (overrides = {}) => loadConfig({ ...env, ...overrides }),
    logger: (config, command) => {
      // Commands other than serve only log warnings unless a level is asked for.
      const level = command === 'serve' || env.EXAI_LOG_LEVEL !== undefined ? config.logLevel : 'warn';
      return createLogger(level).child({ command });
    },
  };
}
