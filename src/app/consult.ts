/**
 * One consultation of a model inside a conversation — what every AI tool does
 * underneath: validate, load the thread (or start one), choose the model, fit
 * history and files into its budget, call it through the router, then store
 * the question and the answer together. A call that fails leaves nothing behind.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../config.js';
import { contextBudget, fitHistory, historyFiles, type FittedHistory } from '../conversations/history.js';
import type { ConversationStore } from '../conversations/store.js';
import { countTokens } from '../conversations/tokens.js';
import type { AppendResult, NewTurn, Thread, Turn } from '../conversations/types.js';
import { parseThreadId } from '../conversations/validate.js';
import { ExaiError } from '../errors.js';
import { formatFiles, readPromptFiles, type PromptFiles } from '../files/prompt-files.js';
import { readPromptImages } from '../files/prompt-images.js';
import type { FileHandler } from '../files/file-handler.js';
import { isUuid } from '../db/session.js';
import { chooseModel, fallbackModels, type ToolCategory } from '../providers/model-choice.js';
import type { ModelInfo } from '../providers/registry.js';
import type { ProviderRouter, RoutedResult } from '../providers/router.js';
import type { ChatMessage } from '../providers/types.js';

export const thinkingModes = ['minimal', 'low', 'medium', 'high', 'max'] as const;
export type ThinkingMode = (typeof thinkingModes)[number];

const consultInputSchema = z
  .object({
    prompt: z.string().min(1, 'must not be empty'),
    model: z.string().min(1).optional(),
    continuationId: z.string().optional(),
    temperature: z.number().min(0, 'must be between 0 and 2').max(2, 'must be between 0 and 2').optional(),
    thinkingMode: z.enum(thinkingModes).optional(),
    webSearch: z.boolean().optional(),
    useMemory: z.boolean().optional(),
    files: z.array(z.string().min(1)).max(100, 'at most 100 files').optional(),
    images: z.array(z.string().min(1)).max(10, 'at most 10 images').optional(),
    fallbacks: z.array(z.string().min(1)).max(5).optional(),
  })
  .strict();

export type ConsultInput = z.input<typeof consultInputSchema>;
export type ParsedConsultInput = z.output<typeof consultInputSchema>;

export interface ConsultOptions {
  userId: string;
  /** The tool on whose behalf the model is consulted. */
  toolName: string;
  /** Which models `auto` prefers for this tool. */
  category?: ToolCategory;
  systemPrompt: string;
  /** What the model is asked, when it differs from the prompt stored as the user's turn. */
  modelPrompt?: string;
  /** Stored with the user's turn (a step tool's step, findings, …). */
  turnMetadata?: Record<string, unknown>;
  /** Files that give context but were not named by this call (a step tool's earlier steps): skipped, not refused, when unreadable. */
  contextFiles?: string[];
  /** Files and images the caller already read for this request, to save reading them twice. */
  prepared?: PreparedFiles;
  /** A thread already loaded by the caller, to save loading it twice. */
  thread?: Thread;
  /** Identifies this request: appending the same turns again with the same id stores them once. */
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
  history: { included: number; omitted: number; tokens: number };
  files: { embedded: string[]; skipped: { path: string; reason: string }[] };
  passedOver: RoutedResult['passedOver'];
  webSearch: RoutedResult['webSearch'];
  sources: NonNullable<RoutedResult['sources']>;
  /** With use_memory: the earlier conversations whose turns were sent. */
  memory?: { continuation_id: string; title: string | null }[];
}

export interface ConsultDeps {
  conversations: ConversationStore;
  router: ProviderRouter;
  config: Pick<Config, 'files' | 'limits'>;
  /** Stored files, which `files` may name by id; ids are refused without it. */
  files?: FileHandler;
  /** Told after turns are stored, so they are embedded for search (by a job, off this path); finds related past turns for use_memory. */
  search?: {
    notify(): void;
    memory?(userId: string, question: string, options: { excludeConversationId?: string; tokenBudget: number }): Promise<{ block: string; used: { continuation_id: string; title: string | null }[] }>;
  };
}

export function parseConsultInput(input: unknown): ParsedConsultInput {
  const parsed = consultInputSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'input'}: ${issue.message}`);
  throw new ExaiError('invalid_argument', `Invalid request: ${problems.join('; ')}.`);
}

/** The thread a continuation id names, or an error that reads the same for unknown and foreign ids. */
export async function loadContinuation(deps: Pick<ConsultDeps, 'conversations'>, userId: string, continuationId: string | undefined): Promise<Thread | undefined> {
  if (continuationId === undefined) return undefined;
  return deps.conversations.loadThread(userId, parseThreadId(continuationId));
}

/** A continued thread keeps its model unless the caller names another; `auto` picks by category and needs. */
export function modelFor(deps: Pick<ConsultDeps, 'router'>, request: ParsedConsultInput, thread: Thread | undefined, category: ToolCategory): { model: ModelInfo; fallbacks: string[] } {
  const registry = deps.router.registry;
  const asked = request.model;
  const vision = (request.images?.length ?? 0) > 0;
  if (asked !== undefined && asked.trim().toLowerCase() !== 'auto') {
    const named = registry.resolve(asked);
    if (vision && !named.capabilities.vision) {
      const seeing = registry.models.filter((model) => model.capabilities.vision).map((model) => model.name);
      throw new ExaiError('invalid_argument', `${named.name} cannot read images. ${seeing.length > 0 ? `Use ${seeing.join(' or ')}, or "auto".` : 'No configured model can; leave out "images".'}`);
    }
    return { model: named, fallbacks: request.fallbacks ?? [] };
  }
  const previous = thread?.turns.findLast((turn) => turn.role === 'assistant' && turn.model !== null)?.model;
  if (previous) {
    try {
      const kept = registry.resolve(previous);
      // A thread keeps its model, unless this turn brings images the model cannot read.
      if (!vision || kept.capabilities.vision) return { model: kept, fallbacks: request.fallbacks ?? fallbackModels(registry, category, kept, { vision }) };
    } catch {
      // that model is no longer offered: choose anew
    }
  }
  const needs = { vision, webSearch: request.webSearch === true, thinking: request.thinkingMode !== undefined && request.thinkingMode !== 'minimal' && category === 'reasoning' };
  const model = chooseModel(registry, category, needs);
  return { model, fallbacks: request.fallbacks ?? fallbackModels(registry, category, model, needs) };
}

function historyNote(history: ConsultResult['history']): string | undefined {
  if (history.omitted === 0) return undefined;
  return `${history.omitted} older turn${history.omitted === 1 ? '' : 's'} of this conversation did not fit the model's context and ${history.omitted === 1 ? 'was' : 'were'} left out; the newest ${history.included} were sent.`;
}

const maxFileNotes = 10;

/** Short notes for the caller about what the model did not see. */
export function consultNotes(result: Pick<ConsultResult, 'history' | 'files' | 'webSearch'>): string[] {
  const notes: string[] = [];
  const history = historyNote(result.history);
  if (history) notes.push(history);
  const shown = result.files.skipped.slice(0, maxFileNotes);
  for (const file of shown) notes.push(`File ${file.path} was not sent: ${file.reason}.`);
  const more = result.files.skipped.length - shown.length;
  if (more > 0) notes.push(`${more} more file${more === 1 ? ' was' : 's were'} not sent (structuredContent.files.skipped lists every one).`);
  if (result.webSearch === 'unsupported') notes.push('Web search was asked for, but this model cannot search the web; it answered from what it knows.');
  return notes;
}

export interface PreparedFiles {
  files: PromptFiles;
  images: string[];
}

/**
 * Reads this call's files (strict: a refused path fails the call) and the
 * context files (earlier turns', earlier steps': skipped with a reason), once,
 * before any model is asked.
 */
export async function prepareFiles(
  deps: Pick<ConsultDeps, 'config' | 'files'>,
  request: Pick<ParsedConsultInput, 'files' | 'images'>,
  contextFiles: readonly string[],
  tokenBudget: number,
  userId: string,
): Promise<PreparedFiles> {
  const own = request.files ?? [];
  const stored = deps.files;
  const files = await readPromptFiles(
    [...own.map((file) => ({ path: file, strict: true })), ...contextFiles.filter((file) => !own.includes(file)).map((file) => ({ path: file, strict: false }))],
    deps.config.files,
    tokenBudget,
    stored === undefined
      ? undefined
      : async (id, limitFor) => {
          const { file, bytes } = await stored.readBytes(userId, id, limitFor);
          return { name: file.name, mimeType: file.mimeType, bytes };
        },
  );
  const images = await readPromptImages(request.images ?? [], deps.config.files, deps.config.files.maxImageBytes);
  return { files, images };
}

export interface ComposedMessages {
  messages: ChatMessage[];
  history: FittedHistory;
}

/** The messages for one model: system prompt, as much history as fits, then the question with its files and images. */
export function composeMessages(model: ModelInfo, systemPrompt: string, asked: string, turns: readonly Turn[], prepared: PreparedFiles): ComposedMessages {
  const budget = contextBudget(model.contextWindow);
  const promptTokens = countTokens(systemPrompt) + countTokens(asked);
  const fixedTokens = promptTokens + prepared.files.tokens;
  if (fixedTokens > budget.input) {
    throw new ExaiError(
      'invalid_argument',
      `The request is about ${fixedTokens} tokens (${promptTokens} of instructions and question, ${prepared.files.tokens} of files), more than the ${budget.input} that ${model.name} takes as input. Send less, or use a model with a larger context window (see listmodels).`,
    );
  }
  const history = fitHistory(turns, Math.min(budget.history, budget.input - fixedTokens), model.provider);
  const content = prepared.files.embedded.length === 0 ? asked : `${asked}\n\nFiles for reference:\n\n${formatFiles(prepared.files.embedded)}`;
  const question: ChatMessage = { role: 'user', content, ...(prepared.images.length === 0 ? {} : { images: prepared.images }) };
  return { messages: [{ role: 'system', content: systemPrompt }, ...history.messages, question], history };
}

/** A one-line title from the text that started a thread. */
export function threadTitle(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

/** Fails before any model is paid for when the question could not be stored. */
export function checkStorable(deps: Pick<ConsultDeps, 'config'>, prompt: string): void {
  const bytes = Buffer.byteLength(prompt, 'utf8');
  if (bytes > deps.config.limits.maxMessageBytes) {
    throw new ExaiError('too_large', `The prompt is ${bytes} bytes, more than the ${deps.config.limits.maxMessageBytes} a turn may hold; nothing was sent or stored. Send files by path instead of pasting them, or raise EXAI_MAX_MESSAGE_BYTES.`);
  }
}

/**
 * Stores a call's turns in its thread, creating the thread first when new. If
 * the turns cannot be stored, a thread created here is removed again, so a
 * failed call leaves nothing behind.
 */
export async function storeTurns(
  deps: Pick<ConsultDeps, 'conversations'>,
  userId: string,
  thread: Thread | undefined,
  newThread: { toolName: string; title: string },
  turns: NewTurn[],
): Promise<{ threadId: string; results: AppendResult[] }> {
  if (thread !== undefined) return { threadId: thread.id, results: await deps.conversations.appendTurns(userId, thread.id, turns) };
  const created = await deps.conversations.createThread(userId, newThread);
  try {
    return { threadId: created.id, results: await deps.conversations.appendTurns(userId, created.id, turns) };
  } catch (error) {
    await deps.conversations.deleteThread(userId, created.id).catch(() => undefined);
    throw error;
  }
}

/** Stored files a turn used are linked to its thread, so the thread's files can be listed. */
export async function linkStoredFiles(deps: Pick<ConsultDeps, 'files'>, userId: string, threadId: string, files: readonly string[]): Promise<void> {
  if (deps.files === undefined) return;
  for (const file of files) if (isUuid(file)) await deps.files.link(userId, threadId, file);
}

export async function consult(deps: ConsultDeps, input: unknown, options: ConsultOptions): Promise<ConsultResult> {
  const request = parseConsultInput(input);
  checkStorable(deps, request.prompt);
  const requestId = options.requestId ?? randomUUID();
  const category = options.category ?? 'balanced';
  const thread = options.thread ?? (await loadContinuation(deps, options.userId, request.continuationId));
  const { model, fallbacks } = modelFor(deps, request, thread, category);
  const turns = thread?.turns ?? [];
  const budget = contextBudget(model.contextWindow);
  const prepared = options.prepared ?? (await prepareFiles(deps, request, [...(options.contextFiles ?? []), ...historyFiles(turns)], budget.files, options.userId));
  // use_memory: related turns of earlier conversations go into the system prompt, within a quarter of the history budget.
  const memory =
    request.useMemory === true && deps.search?.memory !== undefined
      ? await deps.search.memory(options.userId, request.prompt, {
          ...(thread === undefined ? {} : { excludeConversationId: thread.id }),
          tokenBudget: Math.min(4_000, Math.floor(budget.history / 4)),
        })
      : undefined;
  const systemPrompt = memory === undefined || memory.block === '' ? options.systemPrompt : `${options.systemPrompt}\n\n${memory.block}`;
  const { messages, history } = composeMessages(model, systemPrompt, options.modelPrompt ?? request.prompt, turns, prepared);

  const answer = await deps.router.chat({
    model: model.name,
    messages,
    tool: options.toolName,
    maxTokens: Math.min(model.maxOutput, budget.reply),
    ...(fallbacks.length === 0 ? {} : { fallbacks }),
    ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
    ...(request.thinkingMode === undefined ? {} : { thinking: request.thinkingMode !== 'minimal' }),
    ...(request.webSearch === undefined ? {} : { webSearch: request.webSearch }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.onDelta === undefined ? {} : { onDelta: options.onDelta }),
  });

  // Only now, with an answer, is anything stored: the thread (when new), the question and the answer.
  const ownFiles = request.files ?? [];
  const sent = prepared.files.embedded.map((file) => file.path);
  const questionMetadata = {
    ...options.turnMetadata,
    ...(request.images === undefined ? {} : { images: request.images.map((image) => (image.startsWith('data:') ? 'data URL' : image)) }),
  };
  const { threadId, results } = await storeTurns(deps, options.userId, thread, { toolName: options.toolName, title: threadTitle(request.prompt) }, [
    {
      role: 'user',
      content: request.prompt,
      toolName: options.toolName,
      files: [...ownFiles, ...(options.contextFiles ?? []).filter((file) => !ownFiles.includes(file))],
      idempotencyKey: `${requestId}:question`,
      ...(Object.keys(questionMetadata).length === 0 ? {} : { metadata: questionMetadata }),
    },
    {
      role: 'assistant',
      content: answer.content,
      toolName: options.toolName,
      provider: answer.provider,
      model: answer.model,
      ...(answer.reasoningContent === null ? {} : { reasoningContent: answer.reasoningContent }),
      ...(answer.inputTokens === null ? {} : { inputTokens: answer.inputTokens }),
      ...(answer.outputTokens === null ? {} : { outputTokens: answer.outputTokens }),
      ...(sent.length === 0 ? {} : { metadata: { files_sent: sent } }),
      idempotencyKey: `${requestId}:answer`,
    },
  ]);
  await linkStoredFiles(deps, options.userId, threadId, ownFiles);
  deps.search?.notify();
  return {
    content: answer.content,
    reasoningContent: answer.reasoningContent,
    continuationId: threadId,
    model: answer.model,
    provider: answer.provider,
    turnCount: results[1]!.turn.seq,
    inputTokens: answer.inputTokens,
    outputTokens: answer.outputTokens,
    history: { included: history.included, omitted: history.omitted, tokens: history.tokens },
    files: { embedded: sent, skipped: prepared.files.skipped },
    passedOver: answer.passedOver,
    webSearch: answer.webSearch,
    sources: answer.sources ?? [],
    ...(memory === undefined ? {} : { memory: memory.used }),
  };
}
