/**
 * One client for every OpenAI-compatible provider (Kimi, GLM, Ollama, …),
 * through the official `openai` SDK: streamed chat completions with a per-call
 * timeout, cancellation, and retries with jittered backoff that honour
 * Retry-After. A call is retried only until its first token arrives, so a
 * caller never sees text twice. A reply counts only when its stream ends with
 * a finish_reason: one cut short, malformed or not a stream at all fails the
 * call. Errors say what the user can do, and never quote the API key (some
 * providers echo the key they refused). Every call ends in one record.
 *
 * Web search: Kimi's `$web_search` is a tool call the client answers by
 * echoing its arguments back, after which Kimi searches and goes on; GLM
 * searches server-side and reports its sources in a top-level `web_search`.
 */
import OpenAI from 'openai';
import { ExaiError, isExaiError } from '../errors.js';
import type { CallOutcome, CallRecorder } from './call-recorder.js';
import type { PerformanceParams } from '../metrics/param-hash.js';
import { defaultRetryPolicy, errorClass, isLostConnection, isRetryable, retryDelayMs, type RetryPolicy } from './retry.js';
import type { BuiltinTool, ChatMessage, ChatRequest, ChatResult, WebSearchStatus, WebSource } from './types.js';
import { hostOf, pause, redact, settingPrefix, TimeoutReason } from './call-helpers.js';

export interface ProviderClientOptions {
  /** Name in records and messages: `kimi`, `glm`, `openai-compat`. */
  provider: string;
  baseUrl: string;
  apiKey: string | undefined;
  /** Whole-call limit, retries included. */
  timeoutMs: number;
  retry?: RetryPolicy;
  recorder: CallRecorder;
  /** Kimi `$web_search` rounds allowed in one call before it fails; 5 unless set. */
  maxSearchRounds?: number;
}

interface WireToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

type WireContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };

type WireMessage =
  | { role: ChatMessage['role']; content: string | WireContentPart[]; reasoning_content?: string; tool_calls?: WireToolCall[] }
  | { role: 'tool'; tool_call_id: string; name: string; content: string };

function toWire(message: ChatMessage): WireMessage {
  const content: WireMessage['content'] =
    message.images && message.images.length > 0
      ? [{ type: 'text', text: message.content }, ...message.images.map((url) => ({ type: 'image_url' as const, image_url: { url } }))]
      : message.content;
  const wire: WireMessage = { role: message.role, content };
  if (message.role === 'assistant' && message.reasoningContent) wire.reasoning_content = message.reasoningContent;
  return wire;
}

const kimiSearch = '$web_search';

const offersKimiSearch = (tools: BuiltinTool[] | undefined) =>
  tools?.some((tool) => tool.type === 'builtin_function' && tool.function.name === kimiSearch) ?? false;
const offersGlmSearch = (tools: BuiltinTool[] | undefined) => tools?.some((tool) => tool.type === 'web_search' && tool.web_search.enable) ?? false;

/** A streamed tool call's pieces arrive keyed by index: id and name once, the arguments in parts. */
type ToolCallDelta = { index?: number; id?: string | null; function?: { name?: string | null; arguments?: string | null } | null };

/** GLM's `web_search` results (title, link, media, content, …), kept as sources; anything malformed is skipped. */
function addSources(into: Map<string, WebSource>, results: unknown): void {
  if (!Array.isArray(results)) return;
  for (const result of results as unknown[]) {
    if (typeof result !== 'object' || result === null) continue;
    const { title, link } = result as { title?: unknown; link?: unknown };
    if (typeof link !== 'string' || link === '' || into.has(link)) continue;
    into.set(link, { title: typeof title === 'string' && title !== '' ? title : link, url: link });
  }
}

/** What one request (one round) brought back. */
interface Turn {
  content: string;
  reasoning: string;
  toolCalls: WireToolCall[];
  finishReason: string | null;
}

/** What the rounds of one call share, and what its record reports. */
interface CallState {
  started: number;
  attempts: number;
  firstTokenMs: number | null;
  content: string;
  reasoning: string;
  inputTokens: number | null;
  outputTokens: number | null;
  sources: Map<string, WebSource>;
}

/** A failure of the provider to keep to the protocol: not retried, recorded under its own class. */
function protocolError(errorClassName: string, message: string, provider: string, model: string): ExaiError {
  return new ExaiError('provider_error', message, { details: { provider, model, error_class: errorClassName } });
}

/** What the caller can do about a failure of this class. */
function advice(kind: string, provider: string, model: string, baseUrl: string): string | undefined {
  const prefix = settingPrefix(provider);
  if (kind === 'http_401') return `${provider} did not accept the API key: check ${prefix}_API_KEY.`;
  if (kind === 'http_403') return `${provider} refused the request: check that the account of ${prefix}_API_KEY may use ${model}.`;
  if (kind === 'http_404') return `${provider} at ${hostOf(baseUrl)} does not know ${model}: check ${prefix}_BASE_URL.`;
  if (kind === 'rate_limited') return `${provider} is rate limiting these calls: try again in a minute, or choose a model of another provider.`;
  if (/^http_5/.test(kind)) return `${provider} is having trouble: try again later, or choose a model of another provider.`;
  if (kind === 'network') return `Try again; if it keeps failing, check the network and ${prefix}_BASE_URL (${hostOf(baseUrl)}).`;
  return undefined;
}
/** The record's error class: the protocol failure's own, else the transport's. */
function classOf(error: unknown): string {
  const named = isExaiError(error) ? error.details?.error_class : undefined;
  return typeof named === 'string' ? named : errorClass(error);
}

/** What of a request changes how the model performs: see performanceParamHash. */
function performanceParams(request: ChatRequest): PerformanceParams {
  const thinking = (request.extra?.thinking as { type?: unknown } | undefined)?.type;
  return {
    model: request.model,
    temperature: request.temperature ?? null,
    thinking: typeof thinking === 'string' ? thinking : null,
    webSearch: (request.tools?.length ?? 0) > 0,
    maxTokens: request.maxTokens ?? null,
  };
}

export class ProviderClient {
  private readonly sdk: OpenAI;
  private readonly retry: RetryPolicy;

  constructor(private readonly options: ProviderClientOptions) {
    // Retries, timeouts and cancellation are ours, so they cover the whole call and are recorded.
    // Its logger is off: it would print unparsable provider replies to stderr outside the JSON log; failures are reported as errors.
    this.sdk = new OpenAI({ baseURL: options.baseUrl, apiKey: options.apiKey ?? 'none', maxRetries: 0, timeout: options.timeoutMs, logLevel: 'off' });
    this.retry = options.retry ?? defaultRetryPolicy;
  }

  async chat(request: ChatRequest): Promise<ChatResult> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new TimeoutReason()), this.options.timeoutMs);
    const onCallerAbort = () => controller.abort(request.signal?.reason);
    if (request.signal?.aborted) onCallerAbort();
    else request.signal?.addEventListener('abort', onCallerAbort, { once: true });

    const state: CallState = {
      started: performance.now(),
      attempts: 0,
      firstTokenMs: null,
      content: '',
      reasoning: '',
      inputTokens: null,
      outputTokens: null,
      sources: new Map(),
    };
    const { provider } = this.options;
    const finish = (outcome: CallOutcome, failure: unknown) =>
      (request.recorder ?? this.options.recorder).record({
        at: new Date().toISOString(),
        provider,
        model: request.model,
        tool: request.tool ?? null,
        userId: request.userId ?? null,
        durationMs: Math.round(performance.now() - state.started),
        timeToFirstTokenMs: state.firstTokenMs,
        inputTokens: state.inputTokens,
        outputTokens: state.outputTokens,
        outcome,
        errorClass: outcome === 'ok' ? null : outcome === 'error' ? classOf(failure) : outcome,
        attempts: state.attempts,
        params: performanceParams(request),
        apiKeyId: request.apiKeyId ?? null,
      });

    const maxRounds = this.options.maxSearchRounds ?? 5;
    const messages: WireMessage[] = request.messages.map(toWire);
    let rounds = 0;
    try {
      for (;;) {
        const turn = await this.turn(request, messages, controller.signal, state);
        if (turn.toolCalls.length === 0) {
          if (turn.finishReason === 'tool_calls') {
            throw protocolError('bad_tool_call', `${provider} model ${request.model} ended its turn for a tool call but sent none.`, provider, request.model);
          }
          break;
        }
        const other = turn.toolCalls.find((call) => call.function.name !== kimiSearch);
        if (other !== undefined) {
          throw protocolError(
            'unexpected_tool_call',
            `${provider} model ${request.model} asked to call the tool ${JSON.stringify(other.function.name)}, which exai does not offer; only ${kimiSearch} is handled.`,
            provider,
            request.model,
          );
        }
        if (turn.toolCalls.some((call) => call.id === '')) {
          throw protocolError('bad_tool_call', `${provider} model ${request.model} sent a ${kimiSearch} tool call without an id.`, provider, request.model);
        }
        if (rounds >= maxRounds) {
          throw protocolError(
            'search_rounds_exceeded',
            `${provider} model ${request.model} was still searching the web after ${maxRounds} rounds without answering; ask a narrower question or turn web search off.`,
            provider,
            request.model,
          );
        }
        rounds += 1;
        // Kimi searches when it sees its own arguments come back as the tool result.
        const assistant: WireMessage = { role: 'assistant', content: turn.content, tool_calls: turn.toolCalls };
        if (turn.reasoning !== '') assistant.reasoning_content = turn.reasoning;
        messages.push(assistant);
        for (const call of turn.toolCalls) messages.push({ role: 'tool', tool_call_id: call.id, name: kimiSearch, content: call.function.arguments });
      }
      const kimiOffered = offersKimiSearch(request.tools);
      const offered = kimiOffered || offersGlmSearch(request.tools);
      const used = rounds > 0 || state.sources.size > 0;
      const webSearch: WebSearchStatus = used ? 'used' : offered ? 'available_not_used' : 'off';
      const result: ChatResult = {
        content: state.content,
        reasoningContent: state.reasoning === '' ? null : state.reasoning,
        provider,
        model: request.model,
        inputTokens: state.inputTokens,
        outputTokens: state.outputTokens,
        durationMs: Math.round(performance.now() - state.started),
        timeToFirstTokenMs: state.firstTokenMs,
        attempts: state.attempts,
        webSearch,
        ...(kimiOffered || rounds > 0 ? { webSearchRounds: rounds } : {}),
        ...(state.sources.size > 0 ? { sources: [...state.sources.values()] } : {}),
      };
      finish('ok', undefined);
      return result;
    } catch (error) {
      const reason = controller.signal.reason as unknown;
      const attempts = state.attempts;
      if (controller.signal.aborted && reason instanceof TimeoutReason) {
        finish('timeout', error);
        throw new ExaiError(
          'timeout',
          `${provider} model ${request.model} did not finish within ${Math.round(this.options.timeoutMs / 1000)} s (${attempts} attempt${attempts === 1 ? '' : 's'}). ` +
            'Ask for less, or raise EXAI_PROVIDER_TIMEOUT if the model needs longer.',
        );
      }
      if (controller.signal.aborted) {
        finish('cancelled', error);
        throw new ExaiError('cancelled', `The call to ${provider} model ${request.model} was cancelled.`);
      }
      finish('error', error);
      if (isExaiError(error)) throw error;
      const kind = errorClass(error);
      const raw = error instanceof Error ? error.message : String(error);
      const streamed = state.content !== '' || state.reasoning !== '';
      const detail = isLostConnection(error) ? `the connection broke off${streamed ? ' in the middle of the answer' : ''}` : redact(raw, this.options.apiKey);
      const hint = advice(kind, provider, request.model, this.options.baseUrl);
      throw new ExaiError(
        kind === 'network' || kind === 'rate_limited' || /^http_5/.test(kind) ? 'provider_unavailable' : 'provider_error',
        `${provider} model ${request.model} failed after ${attempts} attempt${attempts === 1 ? '' : 's'} (${kind}): ${detail.replace(/[.\s]+$/, '')}.${hint === undefined ? '' : ` ${hint}`}`,
        // The cause goes to logs; not when it quotes the key.
        { ...(redact(raw, this.options.apiKey) === raw ? { cause: error } : {}), details: { provider, model: request.model, error_class: kind } },
      );
    } finally {
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', onCallerAbort);
    }
  }

  /** One request, streamed, retried until text of it reaches the caller. */
  private async turn(request: ChatRequest, messages: WireMessage[], signal: AbortSignal, state: CallState): Promise<Turn> {
    for (let attempt = 1; ; attempt += 1) {
      state.attempts += 1;
      const turn: Turn = { content: '', reasoning: '', toolCalls: [], finishReason: null };
      const calls = new Map<number, WireToolCall>();
      let usage: { prompt_tokens?: number; completion_tokens?: number } | undefined;
      try {
        const { data: stream, response } = await this.sdk.chat.completions
          .create(
            {
              model: request.model,
              messages: messages as OpenAI.Chat.ChatCompletionMessageParam[],
              stream: true,
              stream_options: { include_usage: true },
              ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
              ...(request.maxTokens === undefined ? {} : { max_tokens: request.maxTokens }),
              ...(request.tools === undefined || request.tools.length === 0 ? {} : { tools: request.tools as unknown as OpenAI.Chat.ChatCompletionTool[] }),
              ...(request.extra ?? {}),
            },
            { signal },
          )
          .withResponse();
        for await (const chunk of stream) {
          if (chunk.usage) usage = chunk.usage;
          addSources(state.sources, (chunk as { web_search?: unknown }).web_search);
          const choice = chunk.choices[0];
          if (choice?.finish_reason) turn.finishReason = choice.finish_reason;
          const delta = choice?.delta as { content?: string | null; reasoning_content?: string | null; tool_calls?: ToolCallDelta[] | null } | undefined;
          for (const piece of delta?.tool_calls ?? []) {
            const index = piece.index ?? 0;
            const call = calls.get(index) ?? { id: '', type: 'function' as const, function: { name: '', arguments: '' } };
            calls.set(index, call);
            if (piece.id) call.id = piece.id;
            if (piece.function?.name) call.function.name = piece.function.name;
            if (piece.function?.arguments) call.function.arguments += piece.function.arguments;
          }
          const text = delta?.content ?? '';
          const thought = delta?.reasoning_content ?? '';
          if (!text && !thought) continue;
          if (state.firstTokenMs === null) state.firstTokenMs = Math.round(performance.now() - state.started);
          turn.content += text;
          turn.reasoning += thought;
          state.content += text;
          state.reasoning += thought;
          request.onDelta?.({ ...(text ? { content: text } : {}), ...(thought ? { reasoning: thought } : {}) });
        }
        // The SDK ends an aborted stream quietly; an aborted call must not pass for a finished one.
        if (signal.aborted) throw new Error('aborted');
        // Nor may a stream that stopped short (or was no stream at all) pass for an answer.
        if (turn.finishReason === null) throw this.unfinished(request.model, response.headers.get('content-type'), turn);
        if (usage?.prompt_tokens !== undefined) state.inputTokens = (state.inputTokens ?? 0) + usage.prompt_tokens;
        if (usage?.completion_tokens !== undefined) state.outputTokens = (state.outputTokens ?? 0) + usage.completion_tokens;
        turn.toolCalls = [...calls.entries()].sort(([a], [b]) => a - b).map(([, call]) => call);
        return turn;
      } catch (error) {
        if (signal.aborted) throw error;
        if (error instanceof SyntaxError) {
          const { provider } = this.options;
          throw protocolError(
            'malformed_reply',
            `${provider} model ${request.model} sent a malformed reply (not valid JSON: ${redact(error.message, this.options.apiKey)}). ` +
              `Try again; if it keeps happening, check that ${settingPrefix(provider)}_BASE_URL points at an OpenAI-compatible API.`,
            provider,
            request.model,
          );
        }
        // After text of this turn reached the caller a retry would repeat it; earlier turns are safe to keep.
        const streamed = turn.content !== '' || turn.reasoning !== '';
        if (streamed || attempt >= this.retry.maxAttempts || !isRetryable(error)) throw error;
        await pause(retryDelayMs(attempt, error, this.retry), signal);
      }
    }
  }

  /** The error for a reply that ended without a finish_reason. */
  private unfinished(model: string, contentType: string | null, turn: Turn): ExaiError {
    const { provider, baseUrl } = this.options;
    if (contentType === null || !/event-stream/i.test(contentType)) {
      return protocolError(
        'not_a_stream',
        `${provider} model ${model} answered with ${contentType ?? 'a reply without a content type'} instead of a stream of chat completion chunks: ` +
          `check that ${settingPrefix(provider)}_BASE_URL (${hostOf(baseUrl)}) points at an OpenAI-compatible API.`,
        provider,
        model,
      );
    }
    const where = turn.content !== '' || turn.reasoning !== '' ? 'in the middle of its answer' : 'before it answered';
    return protocolError('incomplete_reply', `${provider} model ${model} stopped ${where}: its stream ended without a finish_reason, so the reply is incomplete. Try again.`, provider, model);
  }
}
