/**
 * `/api/v1/metrics/…`: the performance and usage reports over plain HTTP, for
 * dashboards and scripts. Each request needs the `metrics:read` scope and sees
 * the caller's own calls (everyone's with `admin`), exactly as the
 * `performance_stats` and `usage_stats` tools do. Query parameters map onto
 * the reports' inputs; an unknown or bad one is refused with a 400 naming it.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Services } from '../../app/services.js';
import type { Authenticator } from '../../auth/authenticator.js';
import { hasScope } from '../../auth/principal.js';
import type { PerformanceInput } from '../../metrics/report-input.js';
import { performanceInputFrom, usageInputFrom, type RawParams } from '../../metrics/report-params.js';
import { performanceReport, usageReport } from '../../metrics/reports.js';
import type { StatsScope } from '../../metrics/stats-query.js';
import { requireScope } from '../authentication.js';
import { withinLimits } from '../request-limits.js';

export const metricsApiPrefix = '/api/v1/metrics';

/** Paths that answer one view of the performance report; `/performance` takes `view` as a parameter. */
const viewPaths: Record<string, PerformanceInput['view']> = {
  trends: 'trend',
  trend: 'trend',
  compare: 'compare',
  bottlenecks: 'bottlenecks',
};

/** Every path of this API, for the protected-resource metadata. */
export const metricsApiPaths = ['performance', ...Object.keys(viewPaths), 'usage'].map((name) => `${metricsApiPrefix}/${name}`);

function scopeOf(services: Services, request: FastifyRequest): StatsScope {
  const principal = request.principal!;
  return { db: services.db, userId: principal.userId, everyone: hasScope(principal, 'admin') };
}

const query = (request: FastifyRequest) => (request.query ?? {}) as RawParams;

export function registerMetricsApiRoutes(app: FastifyInstance, services: Services, authenticator: Authenticator): void {
  // On request, like /mcp: nothing is parsed for a caller without the scope.
  const guarded = { onRequest: requireScope(authenticator, services.config, 'metrics:read') };
  const noStore = { 'cache-control': 'private, no-store' };

  app.get(`${metricsApiPrefix}/performance`, guarded, async (request, reply) => {
    const input = performanceInputFrom(query(request), 'query');
    return reply.headers(noStore).send(await withinLimits(services, request, () => performanceReport(scopeOf(services, request), input)));
  });

  for (const [path, view] of Object.entries(viewPaths)) {
    app.get(`${metricsApiPrefix}/${path}`, guarded, async (request, reply) => {
      const input = performanceInputFrom(query(request), 'query', { view });
      return reply.headers(noStore).send(await withinLimits(services, request, () => performanceReport(scopeOf(services, request), input)));
    });
  }

  app.get(`${metricsApiPrefix}/usage`, guarded, async (request, reply) => {
    const input = usageInputFrom(query(request), 'query');
    return reply.headers(noStore).send(await withinLimits(services, request, () => usageReport(scopeOf(services, request), input)));
  });
}
