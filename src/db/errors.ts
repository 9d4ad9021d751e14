import { ExaiError } from '../errors.js';

/** SQLSTATE classes and socket errors that mean "the database cannot be reached right now". */
const unavailableCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'EAI_AGAIN',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
]);

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function isUnavailableError(error: unknown): boolean {
  if (error instanceof ExaiError) return error.code === 'database_unavailable';
  const code = errorCode(error);
  if (code !== undefined && (unavailableCodes.has(code) || code.startsWith('08'))) return true;
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|timeout expired|Query read timeout|Client has encountered a connection error|connect ETIMEDOUT/i.test(message);
}

/** SQLSTATE of a Postgres error, for the callers that branch on one. */
export function sqlState(error: unknown): string | undefined {
  const code = errorCode(error instanceof ExaiError ? error.cause : error);
  return code !== undefined && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * Turns a driver error into an ExaiError with a message fit for users: no
 * connection string, no password, no stack, and a hint at the fix.
 */
export function toDatabaseError(error: unknown, where: string): ExaiError {
  if (error instanceof ExaiError) return error;
  const code = errorCode(error);
  if (isUnavailableError(error)) {
    return new ExaiError(
      'database_unavailable',
      `The database is unavailable (${code ?? (error as Error).message}) at ${where}. ` +
        'Check that it is running and that DATABASE_URL points at it. A write may or may not have been applied: ' +
        'retrying it with the same idempotency key is safe.',
      { cause: error },
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ExaiError('database_error', `Database error${code ? ` ${code}` : ''}: ${message}`, { cause: error });
}
