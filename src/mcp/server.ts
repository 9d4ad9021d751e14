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
import { ExaiError, isExaiError } from '../errors.js';
import { offeredTools } from '../tools/catalog.js';
import type { ToolContext, ToolDefinition } from '../tools/types.js';
import { version } from '../version.js';
import { hasScope, limitSubject, type Principal } from '../auth/principal.js';
import type { Scope } from '../auth/scopes.js';
import type { CallPermit } from '../limits/types.js';
import type { Config } from '../config.js';
import type { ToolCallEnd, ToolCallMetrics, ToolCallStart } from '../metrics/call-metrics.js';

/** Slow models keep clients waiting; a progress note after this much silence keeps them from giving up. */
const progressIntervalMs = 5_000;
/** How often the silence is checked: notes are at most 7 s apart. */
const progressCheckMs = 2_000;

function errorResult(error: unknown): CallToolResult {
  const message = isExaiError(error) ? error.message : 'Internal error; the server log has the details.';
  const retryAfter = isExaiError(error) ? error.details?.retry_after_s : undefined;
  return {
    isError: true,
    content: [{ type: 'text', text: message }],
    ...(isExaiError(error) && typeof retryAfter === 'number' ? { structuredContent: { error: error.code, retry_after_s: retryAfter } } : {}),
  };
}

/** AI tools store what they are asked and answer, so they write conversations unless they say otherwise. */
const defaultToolScopes: Scope[] = ['conversations:write'];

function missingScopeError(tool: ToolDefinition, principal: Principal, missing: Scope[]): ExaiError {
  const remedy =
    principal.method === 'jwt'
      ? 'Ask for a token whose `scope` claim includes it.'
      : `Use a key created with \`exai keys create --user <handle> --scopes ${[...principal.scopes, ...missing].join(',')}\`.`;
  return new ExaiError('forbidden', `${tool.name} needs the scope ${missing.join(' and ')}, which this credential lacks. ${remedy}`);
}

/**
 * The settings a call runs with. Callers over the network (keys, tokens) read
 * the server's own files only from folders the operator named in
 * EXAI_ALLOWED_ROOTS; the working-directory default is for the local user.
 */
function configFor(config: Config, principal: Principal): Config {
  const remote = principal.method === 'api_key' || principal.method === 'jwt';
  if (!remote || config.files.rootsExplicit) return config;
  return { ...config, files: { ...config.files, allowedRoots: [] } };
}

function missingScopes(principal: Principal, tool: ToolDefinition): Scope[] {
  return ['tools:call' as Scope, ...(tool.scopes ?? defaultToolScopes)].filter((scope) => !hasScope(principal, scope));
}

/** The arguments that change how a tool's model performs (see performanceParamHash). */
function performanceArgs(args: Record<string, unknown>): ToolCallStart['params'] {
  return {
    model: typeof args.model === 'string' ? args.model : null,
    temperature: typeof args.temperature === 'number' ? args.temperature : null,
    thinking: typeof args.thinking_mode === 'string' ? args.thinking_mode : null,
    webSearch: args.use_websearch === true,
    maxTokens: null,
  };
}

function conversationOf(result: CallToolResult | undefined, args: Record<string, unknown>): string | null {
  const fromResult = result?.structuredContent?.continuation_id;
  if (typeof fromResult === 'string') return fromResult;
  return typeof args.continuation_id === 'string' ? args.continuation_id : null;
}

function errorClassOf(error: unknown): string {
  return isExaiError(error) ? error.code : 'internal';
}

function resultEnd(result: CallToolResult, args: Record<string, unknown>, signal: AbortSignal): ToolCallEnd {
  const code = result.structuredContent?.error;
  return {
    outcome: signal.aborted ? 'cancelled' : result.isError === true ? 'error' : 'ok',
    errorClass: result.isError === true ? (typeof code === 'string' ? code : 'tool_error') : null,
    conversationId: conversationOf(result, args),
  };
}

function errorEnd(error: unknown, args: Record<string, unknown>, signal: AbortSignal): ToolCallEnd {
  const code = errorClassOf(error);
  const outcome = signal.aborted || code === 'cancelled' ? 'cancelled' : code === 'timeout' ? 'timeout' : 'error';
  return { outcome, errorClass: code, conversationId: conversationOf(undefined, args) };
}

/** A call refused before it ran (scope, rate limit): measured, then answered with the error. */
function finishRefused(measured: ToolCallMetrics, error: unknown): CallToolResult {
  measured.finish({ outcome: 'error', errorClass: errorClassOf(error), conversationId: null });
  return errorResult(error);
}

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** The credential of this request when the transport carries one (HTTP), else the session's. */
function requestPrincipal(extra: Extra, sessionPrincipal: Principal): Principal {
  const carried = extra.authInfo?.extra?.principal as Principal | undefined;
  // The route binds a session to its user; only scopes and limits may differ per request.
  return carried !== undefined && carried.userId === sessionPrincipal.userId ? carried : sessionPrincipal;
}

function register(server: McpServer, services: Services, sessionPrincipal: Principal, source: string, tool: ToolDefinition): void {
  const userId = sessionPrincipal.userId;
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
      const principal = requestPrincipal(extra, sessionPrincipal);
      // Every call is measured, refused ones included: a refusal is an outcome users want to see.
      const measured = services.callMetrics.startToolCall({
        tool: tool.name,
        userId,
        apiKeyId: principal.keyId ?? null,
        params: performanceArgs(args),
      });
      const missing = missingScopes(principal, tool);
      if (missing.length > 0) return finishRefused(measured, missingScopeError(tool, principal, missing));
      let permit: CallPermit;
      try {
        // Before anything reaches a provider: over a limit, the call ends here.
        permit = await services.limits.admit(limitSubject(principal), { ...services.config.rateLimits, ...principal.limits });
      } catch (error) {
        return finishRefused(measured, error);
      }
      // Started only now: every path from here on passes the finally that stops it.
      const heartbeat = setInterval(() => {
        if (Date.now() - lastNote >= progressIntervalMs) note('waiting for the model');
      }, progressCheckMs);
      let tokens = 0;
      const router = services.router.forCaller({
        userId,
        ...(principal.keyId === undefined ? {} : { apiKeyId: principal.keyId }),
        onTokens: (count) => void (tokens += count),
        recorder: measured,
      });
      const context: ToolContext = {
        services: { ...services, router, config: configFor(services.config, principal) },
        userId,
        principal,
        source,
        requestId: `${extra.sessionId ?? 'session'}:${String(extra.requestId)}:${randomUUID()}`,
        signal: extra.signal,
        progress: note,
        onDelta: () => {
          if (Date.now() - lastNote >= 1_000) note('the model is answering');
        },
      };
      let end: ToolCallEnd = { outcome: 'error', errorClass: 'internal', conversationId: null };
      try {
        const result = await tool.run(args, context);
        end = resultEnd(result, args, extra.signal);
        return result;
      } catch (error) {
        if (!isExaiError(error)) services.logger.error({ err: error, tool: tool.name }, 'tool failed');
        end = errorEnd(error, args, extra.signal);
        return errorResult(error);
      } finally {
        measured.finish(end);
        clearInterval(heartbeat);
        await permit.chargeTokens(tokens).catch(() => undefined);
        await permit.release().catch(() => undefined);
      }
    },
  );
}

/** An MCP server acting for `principal`; `source` (a client address, `stdio`) goes into the audit log. */
export function createMcpServer(services: Services, principal: Principal, source = 'stdio'): McpServer {
  const server = new McpServer({ name: 'exai', version }, { capabilities: { logging: {} } });
  for (const tool of offeredTools(services.config)) register(server, services, principal, source, tool);
  return server;
}
