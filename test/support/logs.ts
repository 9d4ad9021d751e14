/** A logger whose JSON lines a test can read back. */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/logger.js';

export interface CapturedLogs {
  logger: Logger;
  lines(): Record<string, unknown>[];
}

export function captureLogs(): CapturedLogs {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter((line) => line.trim() !== ''));
      callback();
    },
  });
  return {
    logger: createLogger('debug', stream),
    lines: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
