/** The HTTP application: routes only; every route calls the shared services. */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Services } from '../app/services.js';
import { errorHandler } from './errors.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerInternalRoutes } from './routes/internal.js';
import { registerMcpRoutes } from './routes/mcp.js';

export interface HttpAppOptions {
  /** Token for the owner's internal API; the API is off without one. */
  ownerToken?: string;
  /** Serve MCP at /mcp; only on loopback until authentication exists. */
  mcpOnLoopback?: boolean;
}

export async function buildHttpApp(services: Services, options: HttpAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: services.logger as FastifyBaseLogger,
    // Health probes arrive every few seconds; errors are logged by our own handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 8 * 1024 * 1024,
  });
  app.setErrorHandler(errorHandler(services.logger));
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ error: { code: 'not_found', message: `No route ${request.method} ${request.url.split('?')[0]}.` } });
  });
  registerHealthRoutes(app, services);
  if (options.ownerToken !== undefined) registerInternalRoutes(app, services, options.ownerToken);
  registerMcpRoutes(app, services, { enabled: options.mcpOnLoopback ?? false });
  await app.ready();
  return app;
}
