/** Tools about exai itself: models, version and status, and the user's conversations. */
import { z } from 'zod';
import { parseThreadId } from '../conversations/validate.js';
import { version } from '../version.js';
import { defineTool, type ToolContext } from './types.js';
import { hasScope } from '../auth/principal.js';
import { recordAudit } from '../audit/audit-log.js';

/** Model calls the caller may see: their own, or everyone's with the admin scope. */
function visibleCalls(context: ToolContext, limit?: number) {
  const { services, principal } = context;
  return hasScope(principal, 'admin') ? services.calls.recent(limit) : services.calls.recent(limit, principal.userId);
}

export const listModelsTool = defineTool({
  name: 'listmodels',
  title: 'List the available models',
  description: 'The models of the configured providers: context window, capabilities, price, and the latest model calls.',
  category: 'fast',
  inputSchema: {},
  annotations: { readOnlyHint: true },
  scopes: [],
  async run(_args, context) {
    const { services } = context;
    const models = services.router.registry.models.map((model) => ({
      name: model.name,
      aliases: model.aliases,
      provider: model.provider,
      context_window: model.contextWindow,
      max_output: model.maxOutput,
      capabilities: model.capabilities,
      price_per_million: model.price,
    }));
    const recentCalls = visibleCalls(context, 20);
    const lines = models.map((model) => {
      const caps = Object.entries(model.capabilities).filter(([, on]) => on).map(([name]) => name);
      return `${model.name}${model.aliases.length ? ` (${model.aliases.join(', ')})` : ''} — ${model.provider}, ${model.context_window.toLocaleString('en')} tokens${caps.length ? `, ${caps.join(', ')}` : ''}`;
    });
    const text =
      models.length === 0
        ? 'No provider is configured: set KIMI_API_KEY, GLM_API_KEY, or OPENAI_COMPAT_BASE_URL with OPENAI_COMPAT_MODELS.'
        : `${lines.join('\n')}\n\nmodel "auto" chooses per tool; ${recentCalls.length} recent model call${recentCalls.length === 1 ? '' : 's'} in structuredContent.recent_calls.`;
    return { content: [{ type: 'text', text }], structuredContent: { models, recent_calls: recentCalls } };
  },
});

export const versionTool = defineTool({
  name: 'version',
  title: 'exai version and status',
  description: 'The server version, its storage, its configuration and the state of each provider.',
  category: 'fast',
  inputSchema: {},
  annotations: { readOnlyHint: true },
  scopes: [],
  async run(_args, context) {
    const { services } = context;
    const health = await services.health();
    const providers = services.router.providerStatus();
    const recent = visibleCalls(context);
    const info = {
      version,
      database: services.db.kind,
      cache: services.cache.backend,
      health: health.status,
      providers,
      config: {
        // Where the server's files live is the operator's business, not every key holder's.
        ...(hasScope(context.principal, 'admin') || context.principal.method === 'local' || context.principal.method === 'owner'
          ? { allowed_roots: services.config.files.allowedRoots }
          : {}),
        provider_timeout_ms: services.config.providers.timeoutMs,
        provider_concurrency: services.config.providers.maxConcurrent,
      },
      model_calls_recorded: recent.length,
      recent_calls: recent.slice(0, 5),
    };
    const providerText = providers.length === 0 ? 'none configured' : providers.map((provider) => `${provider.provider} (${provider.state})`).join(', ');
    return {
      content: [{ type: 'text', text: `exai ${version} — ${info.database}, ${info.cache} cache, ${health.status}; providers: ${providerText}` }],
      structuredContent: info,
    };
  },
});

export const conversationListTool = defineTool({
  name: 'conversation_list',
  title: 'List your conversations',
  description: 'Your conversation threads, most recent first, with their continuation ids.',
  category: 'fast',
  inputSchema: {
    limit: z.number().int().min(1).max(100).optional(),
    cursor: z.string().optional().describe('next_cursor from the previous page.'),
    status: z.enum(['active', 'archived']).optional(),
  },
  annotations: { readOnlyHint: true },
  scopes: ['conversations:read'],
  async run(args, context) {
    const page = await context.services.conversations.listThreads(context.userId, {
      limit: args.limit ?? 20,
      ...(args.cursor === undefined ? {} : { before: args.cursor }),
      ...(args.status === undefined ? {} : { status: args.status }),
    });
    const threads = page.threads.map((thread) => ({
      continuation_id: thread.id,
      title: thread.title,
      tool: thread.toolName,
      turn_count: thread.turnCount,
      status: thread.status,
      updated_at: thread.updatedAt,
    }));
    const text = threads.length === 0 ? 'No conversations.' : threads.map((thread) => `${thread.continuation_id}  ${thread.updated_at}  ${thread.turn_count} turns  ${thread.tool ?? ''}  ${thread.title ?? ''}`).join('\n');
    return { content: [{ type: 'text', text }], structuredContent: { threads, ...(page.nextCursor === undefined ? {} : { next_cursor: page.nextCursor }) } };
  },
});

export const conversationGetTool = defineTool({
  name: 'conversation_get',
  title: 'Show a conversation',
  description: 'One conversation thread with its turns.',
  category: 'fast',
  inputSchema: { continuation_id: z.string().min(1) },
  annotations: { readOnlyHint: true },
  scopes: ['conversations:read'],
  async run(args, context) {
    const thread = await context.services.conversations.loadThread(context.userId, parseThreadId(args.continuation_id));
    const turns = thread.turns.map((turn) => ({
      seq: turn.seq,
      role: turn.role,
      tool: turn.toolName,
      model: turn.model,
      provider: turn.provider,
      content: turn.content,
      files: turn.files,
      created_at: turn.createdAt,
    }));
    const text = [`${thread.title ?? '(untitled)'} — ${thread.turnCount} turns`, ...turns.map((turn) => `[${turn.seq}] ${turn.role}${turn.model ? ` (${turn.model})` : ''}: ${turn.content}`)].join('\n\n');
    return {
      content: [{ type: 'text', text }],
      structuredContent: { continuation_id: thread.id, title: thread.title, tool: thread.toolName, status: thread.status, turn_count: thread.turnCount, turns },
    };
  },
});

export const conversationDeleteTool = defineTool({
  name: 'conversation_delete',
  title: 'Delete a conversation',
  description: 'Deletes one of your conversation threads with all its turns. It cannot be undone.',
  category: 'fast',
  inputSchema: { continuation_id: z.string().min(1) },
  annotations: { destructiveHint: true, idempotentHint: true },
  scopes: ['conversations:write'],
  async run(args, context) {
    const id = parseThreadId(args.continuation_id);
    const actor = { userId: context.userId, label: context.principal.label, source: context.source };
    // The deletion and its audit row commit together.
    await context.services.conversations.deleteThread(context.userId, id, (tx) =>
      recordAudit(tx, actor, { action: 'thread.delete', target: `thread:${id}`, outcome: 'success' }),
    );
    return { content: [{ type: 'text', text: `Deleted conversation ${id}.` }], structuredContent: { continuation_id: id, deleted: true } };
  },
});
