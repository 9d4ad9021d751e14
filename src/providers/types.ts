/** What the rest of exai asks of a model, and what it gets back. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
  /** A thinking model's reasoning for an assistant turn; some providers need it replayed. */
  reasoningContent?: string;
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  maxTokens?: number;
  /** Provider-specific body fields (thinking switches, built-in tools). */
  extra?: Record<string, unknown>;
  /** Cancels the call, including the HTTP request in flight. */
  signal?: AbortSignal;
  /** Each piece of text as it streams in. */
  onDelta?: (delta: { content?: string; reasoning?: string }) => void;
  /** Which tool made the call, for the call record. */
  tool?: string;
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
  attempts: number;
}
