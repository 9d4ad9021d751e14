/**
 * Errors that carry a message meant for the user: what was wrong and how to fix it.
 * Transports turn them into tool errors, HTTP problem responses or CLI messages
 * without a stack trace; anything else is an internal error and is logged.
 */
export type ErrorCode =
  | 'invalid_config'
  | 'invalid_argument'
  | 'not_found'
  | 'conflict'
  | 'unauthorized'
  | 'forbidden'
  | 'too_large'
  | 'unsupported_media_type'
  | 'database_unavailable'
  | 'database_error'
  | 'embedded_database_busy'
  | 'server_unreachable'
  | 'provider_error'
  | 'provider_unavailable'
  | 'storage_unavailable'
  | 'timeout'
  | 'cancelled'
  | 'rate_limited'
  | 'internal';

const httpStatusByCode: Record<ErrorCode, number> = {
  invalid_config: 500,
  invalid_argument: 400,
  not_found: 404,
  conflict: 409,
  unauthorized: 401,
  forbidden: 403,
  too_large: 413,
  unsupported_media_type: 415,
  database_unavailable: 503,
  database_error: 500,
  embedded_database_busy: 409,
  server_unreachable: 502,
  provider_error: 502,
  provider_unavailable: 503,
  storage_unavailable: 503,
  timeout: 504,
  cancelled: 499,
  rate_limited: 429,
  internal: 500,
};

export class ExaiError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ExaiError';
    this.code = code;
    this.details = options?.details;
  }

  get httpStatus(): number {
    return httpStatusByCode[this.code];
  }
}

export function isExaiError(error: unknown): error is ExaiError {
  return error instanceof ExaiError;
}
