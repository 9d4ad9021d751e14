/**
 * One client for every OpenAI-compatible provider (Kimi, GLM, Ollama, …),
 * through the official `openai` SDK: streamed chat completions with a per-call
 * timeout, cancellation, and retries with jittered backoff that honour
 * Retry-After. A call is retried only until its first token arrives, so a
 * caller never sees text twice. Every call ends in one record.
 */
import OpenAI from 'openai';
import { ExaiError } from '../errors.js';
import type { CallOutcome, CallRecorder } from './call-recorder.js';
import { defaultRetryPolicy, errorClass, isRetryable, retryDelayMs, type RetryPolicy } from './retry.js';
import type { ChatMessage, ChatRequest, ChatResult } from './types.js';

export interface ProviderClientOptions {
  /** Name in records and messages: `kimi`, `glm`, `openai-compat`. */
  provider: string;
  baseUrl: string;
  apiKey: string | undefined;
  /** Whole-call limit, retries included. */
  timeoutMs: number;
  retry?: RetryPolicy;
  recorder: CallRecorder;
}

type WireMessage = { role: ChatMessage['role']; content: string; reasoning_content?: string };

function toWire(message: ChatMessage): WireMessage {
  const wire: WireMessage = { role: message.role, content: message.content };
  if (message.role === 'assistant' && message.reasoningContent) wire.reasoning_content = message.reasoningContent;
  return wire;
}

/** Waits, unless the call is aborted first. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

class TimeoutReason extends Error {}

export class ProviderClient {
  private readonly sdk: OpenAI;
  private readonly retry: RetryPolicy;

  constructor(private readonly options: ProviderClientOptions) {
    // Retries, timeouts and cancellation are ours, so they cover the whole call and are recorded.
    this.sdk = new OpenAI({ baseURL: options.baseUrl, apiKey: options.apiKey ?? 'none', maxRetries: 0, timeout: options.timeoutMs });
    this.retry = options.retry ?? defaultRetryPolicy;
  }

  async chat(request: ChatRequest): Promise<ChatResult> {
    const started = performance.now();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new TimeoutReason()), this.options.timeoutMs);
    const onCallerAbort = () => controller.abort(request.signal?.reason);
    if (request.signal?.aborted) onCallerAbort();
    else request.signal?.addEventListener('abort', onCallerAbort, { once: true });

    let attempts = 0;
    let firstTokenMs: number | null = null;
    let content = '';
    let reasoning = '';
    let usage: { prompt_tokens?: number; completion_tokens?: number } | undefined;
    const finish = (outcome: CallOutcome, failure: unknown) =>
      this.options.recorder.record({
        at: new Date().toISOString(),
        provider: this.options.provider,
        model: request.model,
        tool: request.tool ?? null,
        durationMs: Math.round(performance.now() - started),
        timeToFirstTokenMs: firstTokenMs,
        inputTokens: usage?.prompt_tokens ?? null,
        outputTokens: usage?.completion_tokens ?? null,
        outcome,
        errorClass: outcome === 'ok' ? null : outcome === 'error' ? errorClass(failure) : outcome,
        attempts,
      });

    try {
      for (;;) {
        attempts += 1;
        try {
          const stream = await this.sdk.chat.completions.create(
            {
              model: request.model,
              messages: request.messages.map(toWire) as OpenAI.Chat.ChatCompletionMessageParam[],
              stream: true,
              stream_options: { include_usage: true },
              ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
              ...(request.maxTokens === undefined ? {} : { max_tokens: request.maxTokens }),
              ...(request.extra ?? {}),
            },
            { signal: controller.signal },
          );
          for await (const chunk of stream) {
            if (chunk.usage) usage = chunk.usage;
            const delta = chunk.choices[0]?.delta as { content?: string | null; reasoning_content?: string | null } | undefined;
            const text = delta?.content ?? '';
            const thought = delta?.reasoning_content ?? '';
            if ((text || thought) && firstTokenMs === null) firstTokenMs = Math.round(performance.now() - started);
            if (text) content += text;
            if (thought) reasoning += thought;
            if (text || thought) request.onDelta?.({ ...(text ? { content: text } : {}), ...(thought ? { reasoning: thought } : {}) });
          }
          // The SDK ends an aborted stream quietly; an aborted call must not pass for a finished one.
          if (controller.signal.aborted) throw new Error('aborted');
          break;
        } catch (error) {
          if (controller.signal.aborted) throw error;
          // After the first token a retry would repeat text the caller already has.
          if (firstTokenMs !== null || attempts >= this.retry.maxAttempts || !isRetryable(error)) throw error;
          await pause(retryDelayMs(attempts, error, this.retry), controller.signal);
        }
      }
      const result: ChatResult = {
        content,
        reasoningContent: reasoning === '' ? null : reasoning,
        provider: this.options.provider,
        model: request.model,
        inputTokens: usage?.prompt_tokens ?? null,
        outputTokens: usage?.completion_tokens ?? null,
        durationMs: Math.round(performance.now() - started),
        timeToFirstTokenMs: firstTokenMs,
        attempts,
      };
      finish('ok', undefined);
      return result;
    } catch (error) {
      const reason = controller.signal.reason as unknown;
      if (controller.signal.aborted && reason instanceof TimeoutReason) {
        finish('timeout', error);
        throw new ExaiError(
          'timeout',
          `${this.options.provider} model ${request.model} did not finish within ${Math.round(this.options.timeoutMs / 1000)} s (${attempts} attempt${attempts === 1 ? '' : 's'}).`,
        );
      }
      if (controller.signal.aborted) {
        finish('cancelled', error);
        throw new ExaiError('cancelled', `The call to ${this.options.provider} model ${request.model} was cancelled.`);
      }
      finish('error', error);
      const kind = errorClass(error);
      const detail = error instanceof Error ? error.message : String(error);
      throw new ExaiError(
        kind === 'network' || kind === 'rate_limited' || /^http_5/.test(kind) ? 'provider_unavailable' : 'provider_error',
        `${this.options.provider} model ${request.model} failed after ${attempts} attempt${attempts === 1 ? '' : 's'} (${kind}): ${detail}`,
        { cause: error, details: { provider: this.options.provider, model: request.model, error_class: kind } },
      );
    } finally {
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', onCallerAbort);
    }
  }
}
