/**
 * One consultation of a model inside a conversation — what every AI tool does
 * underneath: validate, load the thread (or start one), fit its history into
 * the model's budget, call the model through the router, then store the
 * question and the answer together. A call that fails leaves nothing behind.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ConversationStore } from '../conversations/store.js';
import { fitHistory, historyBudget } from '../conversations/history.js';
import type { Thread } from '../conversations/types.js';
import { parseThreadId } from '../conversations/validate.js';
import { ExaiError } from '../errors.js';
import type { ProviderRouter, RoutedResult } from '../providers/router.js';
import type { ChatMessage } from '../providers/types.js';

const consultInputSchema = z
  .object({
    prompt: z.string().min(1, 'must not be empty'),
    model: z.string().min(1).optional(),
    continuationId: z.string().optional(),
    temperature: z.number().min(0, 'must be between 0 and 2').max(2, 'must be between 0 and 2').optional(),
    thinking: z.boolean().optional(),
    fallbacks: z.array(z.string().min(1)).max(5).optional(),
  })
  .strict();

export type ConsultInput = z.input<typeof consultInputSchema>;

export interface ConsultOptions {
  userId: string;
  /** The tool on whose behalf the model is consulted. */
  toolName: string;
  systemPrompt: string;
  /** Identifies this request; a retry with the same id stores nothing twice. */
  requestId?: string;
  signal?: AbortSignal;
  onDelta?: (delta: { content?: string; reasoning?: string }) => void;
}

export interface ConsultResult {
  content: string;
  reasoningContent: string | null;
  continuationId: string;
  model: string;
  provider: string;
  turnCount: number;
  inputTokens: number | null;
  outputTokens: number | null;
  /** Older turns left out of the prompt to fit the model's budget. */
  omittedTurns: number;
  passedOver: RoutedResult['passedOver'];
}

export interface ConsultDeps {
  conversations: ConversationStore;
  router: ProviderRouter;
}

function parseInput(input: unknown): z.output<typeof consultInputSchema> {
  const parsed = consultInputSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'input'}: ${issue.message}`);
  throw new ExaiError('invalid_argument', `Invalid request: ${problems.join('; ')}.`);
}

/** A continued thread keeps its model unless the caller names another. */
function modelFor(asked: string | undefined, thread: Thread | undefined, deps: ConsultDeps): string {
  if (asked !== undefined && asked.toLowerCase() !== 'auto') return asked;
  const previous = thread?.turns.findLast((turn) => turn.role === 'assistant' && turn.model !== null)?.model;
  if (previous) {
    try {
      return deps.router.registry.resolve(previous).name;
    } catch {
      // that model is no longer offered: pick anew
    }
  }
  return 'auto';
}

export async function consult(deps: ConsultDeps, input: unknown, options: ConsultOptions): Promise<ConsultResult> {
  const request = parseInput(input);
  const requestId = options.requestId ?? randomUUID();
  const thread =
    request.continuationId === undefined
      ? undefined
      : await deps.conversations.loadThread(options.userId, parseThreadId(request.continuationId));
  const model = deps.router.pick(modelFor(request.model, thread, deps));
  const history = fitHistory(thread?.turns ?? [], historyBudget(model.contextWindow));
  const messages: ChatMessage[] = [{ role: 'system', content: options.systemPrompt }, ...history.messages, { role: 'user', content: request.prompt }];

  const answer = await deps.router.chat({
    model: model.name,
    messages,
    tool: options.toolName,
    ...(request.fallbacks === undefined ? {} : { fallbacks: request.fallbacks }),
    ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
    ...(request.thinking === undefined ? {} : { thinking: request.thinking }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.onDelta === undefined ? {} : { onDelta: options.onDelta }),
  });

  // Only now, with an answer, is anything stored: the thread (when new), the question and the answer.
  const threadId =
    thread?.id ?? (await deps.conversations.createThread(options.userId, { toolName: options.toolName, title: request.prompt.slice(0, 80) })).id;
  const [, stored] = await deps.conversations.appendTurns(options.userId, threadId, [
    { role: 'user', content: request.prompt, toolName: options.toolName, idempotencyKey: `${requestId}:question` },
    {
      role: 'assistant',
      content: answer.content,
      toolName: options.toolName,
      provider: answer.provider,
      model: answer.model,
      ...(answer.reasoningContent === null ? {} : { reasoningContent: answer.reasoningContent }),
      ...(answer.inputTokens === null ? {} : { inputTokens: answer.inputTokens }),
      ...(answer.outputTokens === null ? {} : { outputTokens: answer.outputTokens }),
      idempotencyKey: `${requestId}:answer`,
    },
  ]);
  return {
    content: answer.content,
    reasoningContent: answer.reasoningContent,
    continuationId: threadId,
    model: answer.model,
    provider: answer.provider,
    turnCount: stored!.turn.seq,
    inputTokens: answer.inputTokens,
    outputTokens: answer.outputTokens,
    omittedTurns: history.omitted,
    passedOver: answer.passedOver,
  };
}
