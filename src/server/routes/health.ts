import type { FastifyInstance } from 'fastify';
import type { Services } from '../../app/services.js';

/** /health for people and `exai health`; /health/live and /health/ready for orchestrators. */
export function registerHealthRoutes(app: FastifyInstance, services: Services): void {
  app.get('/health', async (_request, reply) => {
    const report = await services.health();
    return reply.status(report.status === 'down' ? 503 : 200).send(report);
  });

  // Live: the process answers. Restarting it would not fix a database outage, so nothing else is checked.
  app.get('/health/live', async () => ({ status: 'ok' }));

  // Ready: worth sending traffic to, which needs the database.
  app.get('/health/ready', async (_request, reply) => {
    const report = await services.health();
    const ready = report.components.database.status !== 'down';
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ok' : 'down', components: report.components });
  });
}
