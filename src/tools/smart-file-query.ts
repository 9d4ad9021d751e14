/**
 * smart_file_query: ask a model a question about one stored file. A small
 * text file (text, Markdown, code, data) goes inline; a large one, a PDF, or
 * any other document (Word, images …) is read by the chosen model's provider
 * through its files API (Kimi and GLM; the file is uploaded once per provider
 * and the id reused), or, for a provider without one, extracted here and cut
 * to the model's file budget.
 */
import { z } from 'zod';
import { consult, linkStoredFiles, modelFor, parseConsultInput } from '../app/consult.js';
import { contextBudget } from '../conversations/history.js';
import { countTokens } from '../conversations/tokens.js';
import { isTextMimeType } from '../files/processing/mime-types.js';
import { extractText } from '../files/processing/text-extraction.js';
import { systemPrompts } from './prompts.js';
import { modelResult, sharedParameters } from './shared.js';
import { defineTool, type ToolContext } from './types.js';

/** Most bytes read here to extract a file's text locally, when no provider files API can. */
const maxLocalExtractionBytes = 64 * 1024 * 1024;

/** The text cut to `budget` tokens, saying so. */
function fitted(text: string, budget: number): { text: string; cut: boolean } {
  const tokens = countTokens(text);
  if (tokens <= budget) return { text, cut: false };
  const keep = Math.floor((text.length * budget * 0.95) / tokens);
  return { text: `${text.slice(0, keep)}\n[… the rest of the document did not fit the model's context …]`, cut: true };
}

async function documentText(context: ToolContext, fileId: string, provider: string): Promise<{ text: string; via: 'provider_file' | 'local_extraction'; providerFileId?: string; uploaded?: boolean }> {
  const { providerFiles, files } = context.services;
  if (providerFiles.supports(provider)) {
    const read = await providerFiles.extractedText(context.userId, fileId, provider, context.signal);
    return { text: read.text, via: 'provider_file', providerFileId: read.providerFileId, uploaded: read.uploaded };
  }
  const { file, bytes } = await files.readBytes(context.userId, fileId, maxLocalExtractionBytes);
  const extracted = await extractText({ bytes, mimeType: file.mimeType, name: file.name, maxChars: 4_000_000 });
  return { text: extracted.text, via: 'local_extraction' };
}

export const smartFileQueryTool = defineTool({
  name: 'smart_file_query',
  title: 'Ask about a stored file',
  description:
    'Ask a question about one of your stored files (file_upload or POST /api/v1/files). Small files are sent inline; large ones are read through the provider\'s files API (Kimi, GLM), uploaded once and reused.',
  category: 'balanced',
  inputSchema: {
    file_id: z.string().min(1).max(100).describe('The file to ask about (file_list shows yours).'),
    question: z.string().min(1).describe('What to find out from the file.'),
    model: sharedParameters.model,
    temperature: sharedParameters.temperature,
    thinking_mode: sharedParameters.thinking_mode,
    continuation_id: sharedParameters.continuation_id,
  },
  annotations: { readOnlyHint: false },
  async run(args, context) {
    const { services } = context;
    const file = await services.files.info(context.userId, args.file_id);
    const base = {
      prompt: args.question,
      ...(args.model === undefined ? {} : { model: args.model }),
      ...(args.temperature === undefined ? {} : { temperature: args.temperature }),
      ...(args.thinking_mode === undefined ? {} : { thinkingMode: args.thinking_mode }),
      ...(args.continuation_id === undefined ? {} : { continuationId: args.continuation_id }),
    };
    const options = { userId: context.userId, toolName: 'smart_file_query', requestId: context.requestId, signal: context.signal, onDelta: () => context.onDelta(), category: 'balanced' as const };
    // Only text can go inline; a small document of another type (a .docx, a PDF) is read like a large one.
    const small = file.size <= services.config.files.maxFileBytes && isTextMimeType(file.mimeType);
    if (small) {
      const result = await consult(services, { ...base, files: [file.id] }, { ...options, systemPrompt: systemPrompts.smartFileQuery });
      return modelResult(result, { file_id: file.id, via: 'inline' });
    }
    const thread = args.continuation_id === undefined ? undefined : await services.conversations.loadThread(context.userId, args.continuation_id);
    const { model } = modelFor(services, parseConsultInput(base), thread, 'balanced');
    context.progress(`reading ${file.name} through ${services.providerFiles.supports(model.provider) ? `${model.provider}'s files API` : 'local text extraction'}`);
    const document = await documentText(context, file.id, model.provider);
    const shown = fitted(document.text, contextBudget(model.contextWindow).files);
    const result = await consult(services, { ...base, model: model.name }, {
      ...options,
      ...(thread === undefined ? {} : { thread }),
      systemPrompt: `${systemPrompts.smartFileQuery}\n\nThe document "${file.name}" (file ${file.id}):\n\n${shown.text}`,
    });
    await linkStoredFiles(services, context.userId, result.continuationId, [file.id]);
    return modelResult(result, {
      file_id: file.id,
      via: document.via,
      ...(document.providerFileId === undefined ? {} : { provider_file_id: document.providerFileId, uploaded: document.uploaded }),
      ...(shown.cut ? { truncated: true } : {}),
    });
  },
});
