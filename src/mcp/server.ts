/**
 * The MCP server: one per session, acting for one user. It offers the
 * configured tools, keeps long calls alive with progress notifications, ties
 * each call's cancellation to the model call, and turns failures into tool
 * errors that say what went wrong without leaking internals.
 */
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Services } from '../app/services.js';
import { isExaiError } from '../errors.js';
import { offeredTools } from '../tools/catalog.js';
import type { ToolContext, ToolDefinition } from '../tools/types.js';
import { version } from '../version.js';

/** Slow models keep clients waiting; a progress note after this much silence keeps them from giving up. */
const progressIntervalMs = 5_000;
/** How often the silence is checked: notes are at most 7 s apart. */
const progressCheckMs = 2_000;

function errorResult(error: unknown): CallToolResult {
  const message = isExaiError(error) ? error.message : 'Internal error; the server log has the details.';
  return { isError: true, content: [{ type: 'text', text: message }] };
}

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

function register(server: McpServer, services: Services, userId: string, tool: ToolDefinition): void {
  server.registerTool(
    tool.name,
    { title: tool.title, description: tool.description, inputSchema: tool.inputSchema, ...(tool.annotations ? { annotations: tool.annotations } : {}) },
    async (args: Record<string, unknown>, extra: Extra): Promise<CallToolResult> => {
      const progressToken = extra._meta?.progressToken;
      let progress = 0;
      let lastNote = Date.now();
      const note = (message: string) => {
        if (progressToken === undefined) return;
        progress += 1;
        lastNote = Date.now();
        void extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress, message } }).catch(() => undefined);
      };
      const heartbeat = setInterval(() => {
        if (Date.now() - lastNote >= progressIntervalMs) note('waiting for the model');
      }, progressCheckMs);
      const context: ToolContext = {
        services,
        userId,
        requestId: `${extra.sessionId ?? 'session'}:${String(extra.requestId)}:${randomUUID()}`,
        signal: extra.signal,
        progress: note,
        onDelta: () => {
          if (Date.now() - lastNote >= 1_000) note('the model is answering');
        },
      };
      try {
        return await tool.run(args, context);
      } catch (error) {
        if (!isExaiError(error)) services.logger.error({ err: error, tool: tool.name }, 'tool failed');
        return errorResult(error);
      } finally {
        clearInterval(heartbeat);
      }
    },
  );
}

export function createMcpServer(services: Services, userId: string): McpServer {
  const server = new McpServer({ name: 'exai', version }, { capabilities: { logging: {} } });
  for (const tool of offeredTools(services.config)) register(server, services, userId, tool);
  return server;
}
