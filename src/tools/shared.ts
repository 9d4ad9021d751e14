/** Parameters every AI tool shares, and the shape of every AI tool's result. */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { consultNotes, thinkingModes, type ConsultInput, type ConsultResult } from '../app/consult.js';

export const sharedParameters = {
  model: z.string().optional().describe('Model name or alias (see listmodels), or "auto".'),
  temperature: z.number().min(0).max(2).optional(),
  thinking_mode: z.enum(thinkingModes).optional().describe('Reasoning depth for thinking-capable models.'),
  use_websearch: z.boolean().optional().describe('Let the model search the web where it can.'),
  use_memory: z.boolean().optional().describe('Also send the most related turns of your earlier conversations (found by conversation search).'),
  continuation_id: z.string().optional().describe('Continue this conversation (from an earlier result).'),
  files: z.array(z.string()).optional().describe('Absolute paths of files or folders to include, or ids of stored files (file_upload, POST /api/v1/files).'),
  images: z.array(z.string()).optional().describe('Absolute image paths or data URLs, for vision models.'),
};

export type SharedArguments = z.output<z.ZodObject<typeof sharedParameters>>;

/** The shared tool arguments in consult's terms. */
export function consultArguments(prompt: string, args: SharedArguments): ConsultInput {
  return {
    prompt,
    ...(args.model === undefined ? {} : { model: args.model }),
    ...(args.continuation_id === undefined ? {} : { continuationId: args.continuation_id }),
    ...(args.temperature === undefined ? {} : { temperature: args.temperature }),
    ...(args.thinking_mode === undefined ? {} : { thinkingMode: args.thinking_mode }),
    ...(args.use_websearch === undefined ? {} : { webSearch: args.use_websearch }),
    ...(args.use_memory === undefined ? {} : { useMemory: args.use_memory }),
    ...(args.files === undefined ? {} : { files: args.files }),
    ...(args.images === undefined ? {} : { images: args.images }),
  };
}

/** Every AI tool's answer: the model's text with a footer, and the same facts as structured content. */
export function modelResult(result: ConsultResult, extra: Record<string, unknown> = {}): CallToolResult {
  const notes = consultNotes(result);
  const structured = {
    ...extra,
    continuation_id: result.continuationId,
    model: result.model,
    provider: result.provider,
    content: result.content,
    turn_count: result.turnCount,
    history: result.history,
    files: result.files,
    tokens: { input: result.inputTokens, output: result.outputTokens },
    web_search: result.webSearch,
    ...(result.memory === undefined ? {} : { memory: result.memory }),
    ...(result.sources.length === 0 ? {} : { sources: result.sources }),
    ...(result.passedOver.length === 0 ? {} : { passed_over: result.passedOver }),
    ...(notes.length === 0 ? {} : { notes }),
  };
  const footer = [
    ...notes.map((note) => `Note: ${note}`),
    `continuation_id: ${result.continuationId} (${result.model} via ${result.provider}; pass it to continue this conversation with any tool)`,
  ];
  return { content: [{ type: 'text', text: `${result.content}\n\n---\n${footer.join('\n')}` }], structuredContent: structured };
}
