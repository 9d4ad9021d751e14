/**
 * JSON logs on stderr (pino). stdout belongs to the MCP stdio transport and to
 * CLI output, so nothing here may ever write to it.
 */
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger } from 'pino';

const redactedPaths = [
  'password',
  'apiKey',
  'token',
  'authorization',
  '*.password',
  '*.apiKey',
  '*.token',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  // A request refused before parsing (431, 400) is logged with its raw bytes, headers and all.
  'err.rawPacket',
];

export function createLogger(level: LogLevel, destination: NodeJS.WritableStream | number = 2): Logger {
  const stream = typeof destination === 'number' ? pino.destination({ fd: destination, sync: true }) : destination;
  return pino({ level, base: { name: 'exai' }, redact: { paths: redactedPaths, censor: '[redacted]' } }, stream);
}

/** A connection string fit for logs and messages: user, password and query (which may carry one) removed. */
export function redactUrl(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  try {
    const url = new URL(text);
    url.username = '';
    url.password = '';
    url.search = '';
    url.hash = '';
    return url.toString();
  } catch {
    return '[unparseable URL]';
  }
}
