/** REST requests count against the caller's limits like tool calls: over a limit, 429 with Retry-After. */
import type { FastifyRequest } from 'fastify';
import type { Services } from '../app/services.js';
import { limitSubject } from '../auth/principal.js';

export async function withinLimits<T>(services: Services, request: FastifyRequest, answer: () => Promise<T>): Promise<T> {
  const principal = request.principal!;
  const permit = await services.limits.admit(limitSubject(principal), { ...services.config.rateLimits, ...principal.limits });
  try {
    return await answer();
  } finally {
    await permit.release().catch(() => undefined);
  }
}
