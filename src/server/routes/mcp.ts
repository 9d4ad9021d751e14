/**
 * MCP over Streamable HTTP at /mcp. Every request is authenticated (or, in
 * local mode, is the local user); a session belongs to the user who opened it,
 * and another user's session id answers like an unknown one. On a loopback
 * listener Host and Origin are checked against DNS rebinding.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../app/services.js';
import type { Authenticator } from '../../auth/authenticator.js';
import { isLoopbackHost } from '../../config.js';
import { createMcpServer } from '../../mcp/server.js';
import { requireScope } from '../authentication.js';

function jsonRpcError(reply: FastifyReply, status: number, message: string): void {
  reply.raw.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

interface Session {
  transport: StreamableHTTPServerTransport;
  userId: string;
  lastSeen: number;
}

/** Sessions one user may hold; opening another closes their least recently used one. */
const maxSessionsPerUser = 64;
/** A session unused this long is closed; its client starts a new one, as the MCP spec asks on 404. */
const sessionIdleMs = 24 * 3_600_000;

export function registerMcpRoutes(app: FastifyInstance, services: Services, authenticator: Authenticator): void {
  const sessions = new Map<string, Session>();
  const onLoopback = isLoopbackHost(services.config.http.host);

  const closeSession = (id: string, session: Session) => {
    sessions.delete(id);
    void session.transport.close().catch(() => undefined);
  };
  /** Makes room for one more session of this user. */
  const limitSessions = (userId: string) => {
    const own = [...sessions].filter(([, session]) => session.userId === userId).sort(([, a], [, b]) => a.lastSeen - b.lastSeen);
    for (const [id, session] of own.slice(0, Math.max(0, own.length - maxSessionsPerUser + 1))) closeSession(id, session);
  };
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [id, session] of sessions) if (now - session.lastSeen > sessionIdleMs) closeSession(id, session);
  }, 5 * 60_000);
  sweep.unref();

  const localNames = () => {
    const port = (app.server.address() as AddressInfo | null)?.port;
    const hosts = ['127.0.0.1', 'localhost', '[::1]'].map((host) => `${host}:${port}`);
    return { hosts, origins: hosts.map((host) => `http://${host}`) };
  };

  const handle = async (request: FastifyRequest, reply: FastifyReply) => {
    const principal = request.principal!;
    reply.hijack();
    const sessionId = request.headers['mcp-session-id'];
    const existing = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    // Someone else's session is, to this caller, no session at all.
    const own = existing?.userId === principal.userId ? existing : undefined;
    if (own !== undefined) own.lastSeen = Date.now();
    let transport = own?.transport;
    if (transport === undefined) {
      if (request.method !== 'POST' || sessionId !== undefined || !isInitializeRequest(request.body)) {
        jsonRpcError(reply, sessionId === undefined ? 400 : 404, sessionId === undefined ? 'No session: send initialize first.' : 'Unknown or expired session.');
        return;
      }
      // Behind authentication, a rebinding page cannot present the bearer credential; on loopback in
      // local mode the Host and Origin checks are what keeps other web pages out.
      const rebinding = onLoopback ? { enableDnsRebindingProtection: true, allowedHosts: localNames().hosts, allowedOrigins: localNames().origins } : {};
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          limitSessions(principal.userId);
          sessions.set(id, { transport: created, userId: principal.userId, lastSeen: Date.now() });
        },
        ...rebinding,
      });
      created.onclose = () => {
        if (created.sessionId !== undefined) sessions.delete(created.sessionId);
      };
      await createMcpServer(services, principal, request.ip).connect(created);
      transport = created;
    }
    // Each request carries its own credential: a session opened with one key and used with a
    // narrower key of the same user gets the narrower key's scopes and limits.
    const auth: AuthInfo = { token: '', clientId: principal.label, scopes: [...principal.scopes], extra: { principal } };
    await transport.handleRequest(Object.assign(request.raw, { auth }), reply.raw, request.body);
  };

  // On request, before the body is read: an unauthenticated client cannot make the server parse megabytes.
  const guarded = { onRequest: requireScope(authenticator, services.config, 'tools:call') };
  app.post('/mcp', guarded, handle);
  app.get('/mcp', guarded, handle);
  app.delete('/mcp', guarded, handle);
  // Before the listener closes: an open SSE stream would otherwise keep close() waiting for ever.
  app.addHook('preClose', async () => {
    clearInterval(sweep);
    for (const session of sessions.values()) await session.transport.close().catch(() => undefined);
    sessions.clear();
  });
}
