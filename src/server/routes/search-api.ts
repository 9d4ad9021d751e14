/**
 * `GET /api/v1/search?q=…`: the conversation search over plain HTTP, with the
 * same answer as the `conversation_search` tool. Needs `conversations:read`;
 * query parameters `q`, `limit`, `since`, `until`, `tool`, `model`,
 * `conversation_id`, `threshold`; an unknown one is refused, naming it.
 */
import type { FastifyInstance } from 'fastify';
import type { Services } from '../../app/services.js';
import type { Authenticator } from '../../auth/authenticator.js';
import { parseThreadId } from '../../conversations/validate.js';
import { ExaiError } from '../../errors.js';
import { searchConversations } from '../../search/search.js';
import { requireScope } from '../authentication.js';
import { withinLimits } from '../request-limits.js';

export const searchApiPath = '/api/v1/search';

const known = new Set(['q', 'limit', 'since', 'until', 'tool', 'model', 'conversation_id', 'threshold']);

function dateOf(value: string | undefined, name: string): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new ExaiError('invalid_argument', `${name} must be a date or time such as 2026-10-01 or 2026-10-01T12:00:00Z.`);
  return date;
}

function numberOf(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(value)) throw new ExaiError('invalid_argument', `${name} must be a number.`);
  return Number(value);
}

export function registerSearchApiRoutes(app: FastifyInstance, services: Services, authenticator: Authenticator): void {
  app.get<{ Querystring: Record<string, string | undefined> }>(
    searchApiPath,
    { onRequest: requireScope(authenticator, services.config, 'conversations:read') },
    async (request, reply) => {
      const query = request.query;
      const unknown = Object.keys(query).filter((name) => !known.has(name));
      if (unknown.length > 0) throw new ExaiError('invalid_argument', `Unknown parameter ${unknown.join(', ')}; the parameters are ${[...known].join(', ')}.`);
      if (query.q === undefined) throw new ExaiError('invalid_argument', 'Say what to look for: /api/v1/search?q=auth+refactor');
      const principal = request.principal!;
      const limit = numberOf(query.limit, 'limit');
      const threshold = numberOf(query.threshold, 'threshold');
      const from = dateOf(query.since, 'since');
      const to = dateOf(query.until, 'until');
      const answer = await withinLimits(services, request, () =>
        searchConversations({ db: services.db, embedder: services.search.embedder, logger: services.logger }, principal.userId, {
          query: query.q!,
          ...(limit === undefined ? {} : { limit }),
          ...(threshold === undefined ? {} : { threshold }),
          ...(from === undefined ? {} : { from }),
          ...(to === undefined ? {} : { to }),
          ...(query.tool === undefined ? {} : { tool: query.tool }),
          ...(query.model === undefined ? {} : { model: query.model }),
          ...(query.conversation_id === undefined ? {} : { conversationId: parseThreadId(query.conversation_id) }),
        }),
      );
      return reply.header('cache-control', 'private, no-store').send(answer);
    },
  );
}
