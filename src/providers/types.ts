import type { CallRecorder } from './call-recorder.js';
/** What the rest of exai asks of a model, and what it gets back. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
  /** A thinking model's reasoning for an assistant turn; some providers need it replayed. */
  reasoningContent?: string;
  /** Images for a user turn, as data URLs; only vision models take them. */
  images?: string[];
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  maxTokens?: number;
  /** Provider-specific body fields (thinking switches). */
  extra?: Record<string, unknown>;
  /** Provider built-in tools offered to the model; sent as the body's `tools`. */
  tools?: BuiltinTool[];
  /** Cancels the call, including the HTTP request in flight. */
  signal?: AbortSignal;
  /** Each piece of text as it streams in. */
  onDelta?: (delta: { content?: string; reasoning?: string }) => void;
  /** Which tool made the call, for the call record. */
  tool?: string;
  /** Whose call it is, for the call record (each user sees only their own). */
  userId?: string;
  /** The API key the call was made with, for the call record. */
  apiKeyId?: string;
  /** Where this call's record goes instead of the client's own recorder (a tool call collects its calls). */
  recorder?: CallRecorder;
}

export interface ChatResult {
  content: string;
  reasoningContent: string | null;
  provider: string;
  model: string;
  inputTokens: number | null;
  outputTokens: number | null;
  durationMs: number;
  /** From sending the request to the first streamed text; null when none came. */
  timeToFirstTokenMs: number | null;
  /** HTTP requests made, retries and web search rounds included. */
  attempts: number;
  /** What became of web search; see WebSearchStatus. */
  webSearch: WebSearchStatus;
  /** Kimi: how many times the model searched before answering; absent when `$web_search` was not offered. */
  webSearchRounds?: number;
  /** The pages the provider reported searching (GLM), in order, one per URL; absent when none were reported. */
  sources?: WebSource[];
}

/**
 * The providers' server-side tools, the only tools exai offers a model.
 * Kimi's `$web_search` comes back as a tool call the client echoes; GLM searches
 * on its own and reports what it read.
 */
export type BuiltinTool =
  | { type: 'builtin_function'; function: { name: '$web_search' } }
  | { type: 'web_search'; web_search: { enable: boolean; search_result: boolean } };

/**
 * - `off`: web search was not asked for.
 * - `unsupported`: asked for, but the model has none; it answered without.
 * - `available_not_used`: offered, and the model answered without searching.
 * - `used`: the model searched (Kimi asked for a search; GLM reported sources).
 */
export type WebSearchStatus = 'off' | 'unsupported' | 'available_not_used' | 'used';

export interface WebSource {
  title: string;
  url: string;
}
