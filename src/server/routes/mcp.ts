/**
 * MCP over Streamable HTTP at /mcp, with sessions (one MCP server each) and
 * Host/Origin checks against DNS rebinding. Until authentication exists, it
 * serves only a server listening on loopback, as the local user.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../app/services.js';
import { createMcpServer } from '../../mcp/server.js';

function jsonRpcError(reply: FastifyReply, status: number, message: string): void {
  reply.raw.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

export function registerMcpRoutes(app: FastifyInstance, services: Services, options: { enabled: boolean }): void {
  const sessions = new Map<string, StreamableHTTPServerTransport>();

  const localNames = () => {
    const port = (app.server.address() as AddressInfo | null)?.port;
    const hosts = ['127.0.0.1', 'localhost', '[::1]'].map((host) => `${host}:${port}`);
    return { hosts, origins: hosts.map((host) => `http://${host}`) };
  };

  const handle = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!options.enabled) {
      return reply.status(403).send({
        error: {
          code: 'forbidden',
          message: 'MCP over HTTP is served only on a loopback address until authentication is configured: set EXAI_HOST=127.0.0.1, or use `exai stdio`.',
        },
      });
    }
    reply.hijack();
    const sessionId = request.headers['mcp-session-id'];
    let transport = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    if (transport === undefined) {
      if (request.method !== 'POST' || sessionId !== undefined || !isInitializeRequest(request.body)) {
        jsonRpcError(reply, sessionId === undefined ? 400 : 404, sessionId === undefined ? 'No session: send initialize first.' : 'Unknown or expired session.');
        return;
      }
      const { hosts, origins } = localNames();
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => void sessions.set(id, created),
        enableDnsRebindingProtection: true,
        allowedHosts: hosts,
        allowedOrigins: origins,
      });
      created.onclose = () => {
        if (created.sessionId !== undefined) sessions.delete(created.sessionId);
      };
      await createMcpServer(services, services.localUser.id).connect(created);
      transport = created;
    }
    await transport.handleRequest(request.raw, reply.raw, request.body);
  };

  app.post('/mcp', handle);
  app.get('/mcp', handle);
  app.delete('/mcp', handle);
  // Before the listener closes: an open SSE stream would otherwise keep close() waiting for ever.
  app.addHook('preClose', async () => {
    for (const transport of sessions.values()) await transport.close().catch(() => undefined);
    sessions.clear();
  });
}
