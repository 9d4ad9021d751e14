/**
 * Prometheus at `GET /metrics`, behind the `metrics:scrape` scope (every user's calls added up, so keys get it only when asked for) like any
 * protected route (in local mode the local user holds every scope), and the
 * hook that times every HTTP request by its route pattern.
 */
import type { FastifyInstance } from 'fastify';
import type { Services } from '../../app/services.js';
import type { Authenticator } from '../../auth/authenticator.js';
import type { PrometheusMetrics } from '../../metrics/prometheus.js';
import { requireScope } from '../authentication.js';

/**
 * Times every request when its response has been sent (hijacked ones such as
 * /mcp included). Register it before the routes. The route label is the
 * pattern Fastify matched (`/mcp`), never the URL; `unmatched` when none did.
 */
export function registerHttpMetrics(app: FastifyInstance, prometheus: PrometheusMetrics): void {
  app.addHook('onResponse', async (request, reply) => {
    prometheus.observeHttp({
      method: request.method,
      route: request.is404 ? undefined : request.routeOptions.url,
      statusCode: reply.statusCode,
      seconds: reply.elapsedTime / 1000,
    });
  });
}

export function registerMetricsEndpoint(app: FastifyInstance, services: Services, authenticator: Authenticator): void {
  app.get('/metrics', { onRequest: requireScope(authenticator, services.config, 'metrics:scrape') }, async (_request, reply) => {
    const body = await services.prometheus.metrics();
    return reply.header('content-type', services.prometheus.contentType).header('cache-control', 'no-store').send(body);
  });
}
