/** The HTTP application: routes only; every route calls the shared services. */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Services } from '../app/services.js';
import { errorHandler } from './errors.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerInternalRoutes } from './routes/internal.js';
import { registerMcpRoutes } from './routes/mcp.js';
import { metricsApiPaths, registerMetricsApiRoutes } from './routes/metrics-api.js';
import { registerHttpMetrics, registerMetricsEndpoint } from './routes/metrics-endpoint.js';
import { Authenticator } from '../auth/authenticator.js';
import { ensureUser } from '../users/users.js';
import { registerProtectedResourceMetadata } from './authentication.js';
import { filesApiPrefix, registerFilesApiRoutes } from './routes/files-api.js';
import { registerTusRoutes, uploadsPath } from './routes/tus-uploads.js';
import { registerSearchApiRoutes, searchApiPath } from './routes/search-api.js';

export interface HttpAppOptions {
  /** Token for the owner's internal API (and the local stdio relay); the API is off without one. */
  ownerToken?: string;
}

/** Fastify's trustProxy: a number of hops becomes the function that trusts the nearest ones. */
function trustProxyOption(setting: false | number | string[]): boolean | string[] | ((address: string, hop: number) => boolean) {
  return typeof setting === 'number' ? (_address: string, hop: number) => hop < setting : setting;
}

export async function buildHttpApp(services: Services, options: HttpAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: services.logger as FastifyBaseLogger,
    // Health probes arrive every few seconds; errors are logged by our own handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 8 * 1024 * 1024,
    // Signed download tokens travel as a path parameter.
    routerOptions: { maxParamLength: 500 },
    // Client addresses count failed logins; behind a proxy they come from X-Forwarded-For, if trusted.
    trustProxy: trustProxyOption(services.config.http.trustProxy),
  });
  app.setErrorHandler(errorHandler(services.logger));
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ error: { code: 'not_found', message: `No route ${request.method} ${request.url.split('?')[0]}.` } });
  });
  // Before the routes: every request is timed by its route pattern.
  registerHttpMetrics(app, services.prometheus);
  registerHealthRoutes(app, services);
  if (options.ownerToken !== undefined) registerInternalRoutes(app, services, options.ownerToken);
  const authenticator = new Authenticator({
    config: services.config,
    db: services.db,
    logger: services.logger,
    limits: services.limits,
    localUser: services.localUser,
    ownerToken: options.ownerToken,
    ensureUserId: async (handle) => (handle === undefined ? services.localUser.id : (await ensureUser(services.db, handle)).id),
  });
  registerProtectedResourceMetadata(app, services.config, ['/mcp', '/metrics', ...metricsApiPaths, filesApiPrefix, uploadsPath, searchApiPath]);
  registerMcpRoutes(app, services, authenticator);
  registerMetricsApiRoutes(app, services, authenticator);
  registerMetricsEndpoint(app, services, authenticator);
  await registerFilesApiRoutes(app, services, authenticator);
  await registerTusRoutes(app, services, authenticator);
  registerSearchApiRoutes(app, services, authenticator);
  await app.ready();
  return app;
}
