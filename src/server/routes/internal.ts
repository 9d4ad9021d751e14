/**
 * The owner's internal API: how CLI commands reach an embedded database that
 * another process (the running server) owns. Guarded by the owner token from
 * EXAI_HOME/owner.json, which only the owning OS user can read.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Services } from '../../app/services.js';
import { isLoopbackAddress } from '../authentication.js';
import { bearerCredential, sameSecret } from '../../auth/bearer.js';
import { migrationStatus } from '../../db/migrate.js';
import type { ThreadStatus } from '../../conversations/types.js';
import { isAdminOperation, runAdminOperation } from '../../admin/operations.js';
import { ExaiError } from '../../errors.js';


function tokenMatches(expected: string, header: string | undefined): boolean {
  const credential = bearerCredential(header);
  return credential !== undefined && sameSecret(credential, expected);
}

function userFor(services: Services, request: FastifyRequest): Promise<string> {
  return services.userIdFor((request.query as { user?: string }).user);
}

export function registerInternalRoutes(app: FastifyInstance, services: Services, ownerToken: string): void {
  app.register(
    async (internal) => {
      internal.addHook('onRequest', async (request, reply) => {
        // Only local commands use this API; from elsewhere it does not exist.
        if (!isLoopbackAddress(request.socket.remoteAddress)) {
          await reply.status(404).send({ error: { code: 'not_found', message: `No route ${request.method} ${request.url.split('?')[0]}.` } });
          return;
        }
        if (!tokenMatches(ownerToken, request.headers.authorization)) {
          await reply.status(401).send({ error: { code: 'unauthorized', message: 'The owner token is missing or wrong.' } });
        }
      });

      internal.get('/migrations', async () => migrationStatus(services.db));

      // Users, keys and the audit log, for CLI commands run by the owning OS user.
      internal.post('/admin/:name', async (request) => {
        const name = (request.params as { name: string }).name;
        if (!isAdminOperation(name)) throw new ExaiError('not_found', `No administration operation ${JSON.stringify(name)}.`);
        const body = (request.body ?? {}) as { input?: unknown; actor?: unknown };
        const label = typeof body.actor === 'string' && body.actor.length <= 200 ? body.actor : 'cli';
        return runAdminOperation({ db: services.db, config: services.config, actor: { label, source: 'cli' } }, name, body.input ?? {});
      });

      internal.get('/threads', async (request) => {
        const query = request.query as { limit?: string; before?: string; status?: string };
        const options: { limit?: number; before?: string; status?: ThreadStatus } = {};
        if (query.limit !== undefined) options.limit = Number(query.limit);
        if (query.before !== undefined) options.before = query.before;
        if (query.status !== undefined) options.status = query.status as ThreadStatus;
        return services.conversations.listThreads(await userFor(services, request), options);
      });

      internal.post('/threads', async (request, reply) => {
        const thread = await services.conversations.createThread(await userFor(services, request), request.body ?? {});
        return reply.status(201).send(thread);
      });

      internal.post('/threads/:id/turns', async (request, reply) => {
        const result = await services.conversations.appendTurn(
          await userFor(services, request),
          (request.params as { id: string }).id,
          request.body,
        );
        return reply.status(result.deduplicated ? 200 : 201).send(result);
      });

      internal.get('/threads/:id', async (request) =>
        services.conversations.loadThread(await userFor(services, request), (request.params as { id: string }).id),
      );
    },
    { prefix: '/internal/v1' },
  );
}
