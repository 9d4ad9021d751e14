/**
 * The MCP server: one per session, acting for one user. Tools are thin: they
 * validate nothing themselves beyond the schema the client sees, and call the
 * shared services (consult, the registry, the call records).
 */
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { consult } from '../app/consult.js';
import type { Services } from '../app/services.js';
import { isExaiError } from '../errors.js';
import { version } from '../version.js';

const chatSystemPrompt =
  'You are a senior engineer giving a second opinion to another AI coding assistant. ' +
  'Be direct and specific; say when you disagree and why; prefer concrete code and steps over generalities.';

/** Slow models keep clients waiting; a progress note at least this often keeps them from giving up. */
const progressIntervalMs = 5_000;

function errorResult(error: unknown): CallToolResult {
  const message = isExaiError(error) ? error.message : 'Internal error; the server log has the details.';
  return { isError: true, content: [{ type: 'text', text: message }] };
}

export function createMcpServer(services: Services, userId: string): McpServer {
  const server = new McpServer({ name: 'exai', version }, { capabilities: { logging: {} } });

  server.registerTool(
    'chat',
    {
      title: 'Chat with a second-opinion model',
      description:
        'Ask Kimi, GLM or another configured model for a second opinion. Pass continuation_id from an earlier answer to continue that conversation; the model of a continued conversation is kept unless you name another.',
      inputSchema: {
        prompt: z.string().min(1).describe('What to ask, with the context the model needs.'),
        model: z.string().optional().describe('A model name or alias from listmodels, or "auto" (the default).'),
        continuation_id: z.string().optional().describe('Continue this conversation.'),
        temperature: z.number().min(0).max(2).optional(),
        thinking_mode: z.enum(['minimal', 'low', 'medium', 'high', 'max']).optional().describe('Ask thinking-capable models to reason first (any mode but minimal).'),
      },
      outputSchema: {
        continuation_id: z.string(),
        model: z.string(),
        provider: z.string(),
        turn_count: z.number(),
        omitted_turns: z.number(),
      },
    },
    async (args, extra): Promise<CallToolResult> => {
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
      }, progressIntervalMs);
      try {
        const result = await consult(
          services,
          {
            prompt: args.prompt,
            ...(args.model === undefined ? {} : { model: args.model }),
            ...(args.continuation_id === undefined ? {} : { continuationId: args.continuation_id }),
            ...(args.temperature === undefined ? {} : { temperature: args.temperature }),
            ...(args.thinking_mode === undefined ? {} : { thinking: args.thinking_mode !== 'minimal' }),
          },
          {
            userId,
            toolName: 'chat',
            systemPrompt: chatSystemPrompt,
            requestId: `${extra.sessionId ?? 'session'}:${String(extra.requestId)}:${randomUUID()}`,
            signal: extra.signal,
            onDelta: () => {
              if (Date.now() - lastNote >= 1_000) note('the model is answering');
            },
          },
        );
        const structured = {
          continuation_id: result.continuationId,
          model: result.model,
          provider: result.provider,
          turn_count: result.turnCount,
          omitted_turns: result.omittedTurns,
        };
        const footer = `\n\n---\ncontinuation_id: ${result.continuationId} (${result.model} via ${result.provider}; pass it to continue this conversation)`;
        return { content: [{ type: 'text', text: `${result.content}${footer}` }], structuredContent: structured };
      } catch (error) {
        if (!isExaiError(error)) services.logger.error({ err: error }, 'chat tool failed');
        return errorResult(error);
      } finally {
        clearInterval(heartbeat);
      }
    },
  );

  server.registerTool(
    'listmodels',
    {
      title: 'List the available models',
      description: 'The models of the configured providers, with context window, capabilities and price, and the latest model calls.',
      inputSchema: {},
    },
    async (): Promise<CallToolResult> => {
      const models = services.router.registry.models.map((model) => ({
        name: model.name,
        aliases: model.aliases,
        provider: model.provider,
        context_window: model.contextWindow,
        max_output: model.maxOutput,
        capabilities: model.capabilities,
        price_per_million: model.price,
      }));
      const recentCalls = services.calls.recent(20);
      const lines = models.map((model) => `${model.name} (${model.provider}, ${model.context_window.toLocaleString('en')} tokens)`);
      const text = models.length === 0 ? 'No provider is configured: set KIMI_API_KEY, GLM_API_KEY or OPENAI_COMPAT_BASE_URL.' : lines.join('\n');
      return { content: [{ type: 'text', text }], structuredContent: { models, recent_calls: recentCalls } };
    },
  );

  server.registerTool(
    'version',
    { title: 'exai version', description: 'The server version, its storage and its providers.', inputSchema: {} },
    async (): Promise<CallToolResult> => {
      const providers = [...new Set(services.router.registry.models.map((model) => model.provider))];
      const info = {
        version,
        database: services.db.kind,
        cache: services.cache.backend,
        providers,
        model_calls_recorded: services.calls.recent().length,
      };
      return { content: [{ type: 'text', text: `exai ${version} (${info.database}, ${info.cache} cache; providers: ${providers.join(', ') || 'none'})` }], structuredContent: info };
    },
  );

  return server;
}
