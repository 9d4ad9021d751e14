/** One shape for every HTTP error: `{error: {code, message}}`, never a stack trace. */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isExaiError } from '../errors.js';
import type { Logger } from '../logger.js';

/** The route's pattern and method, never the URL itself: a path may carry a credential (signed download tokens). */
function routeOf(request: FastifyRequest): string {
  return `${request.method} ${request.routeOptions.url ?? '(no route)'}`;
}

export function errorHandler(logger: Logger) {
  return (error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void => {
    if (isExaiError(error)) {
      if (error.httpStatus >= 500) logger.warn({ code: error.code, route: routeOf(request), err: error.message }, 'request failed');
      const retryAfter = error.details?.retry_after_s;
      if (typeof retryAfter === 'number') void reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfter))));
      void reply.status(error.httpStatus).send({ error: { code: error.code, message: error.message, ...(error.details ?? {}) } });
      return;
    }
    const fastifyError = error as FastifyError;
    if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode < 500) {
      void reply.status(fastifyError.statusCode).send({ error: { code: 'invalid_request', message: fastifyError.message } });
      return;
    }
    logger.error({ err: error, route: routeOf(request), requestId: request.id }, 'unexpected error');
    void reply
      .status(500)
      .send({ error: { code: 'internal', message: `Internal error (request ${request.id}); the server log has the details.` } });
  };
}
