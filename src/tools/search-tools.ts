/** conversation_search: find past conversations by words or meaning, and continue them. */
import { z } from 'zod';
import { parseThreadId } from '../conversations/validate.js';
import { ExaiError } from '../errors.js';
import { maxQueryChars, searchConversations, similarConversations, type SearchAnswer } from '../search/search.js';
import { defineTool } from './types.js';

function parseDate(value: string | undefined, name: string): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new ExaiError('invalid_argument', `${name} must be a date or time such as 2026-10-01 or 2026-10-01T12:00:00Z.`);
  return date;
}

function answerText(answer: SearchAnswer): string {
  const how = { hybrid: 'words and meaning', full_text: 'words only', vector: 'similar as a whole' }[answer.mode];
  const head = answer.results.length === 0 ? 'No conversation matches.' : `${answer.results.length} conversation${answer.results.length === 1 ? '' : 's'} (${how}):`;
  const lines = answer.results.map((result, index) => `${index + 1}. ${result.title ?? '(untitled)'} — continuation_id ${result.continuation_id}\n   ${result.file === undefined ? '' : `in file ${result.file}: `}${result.snippet.replace(/\s+/g, ' ')}`);
  return [head, ...lines, ...(answer.note === undefined ? [] : [`Note: ${answer.note}`])].join('\n');
}

export const conversationSearchTool = defineTool({
  name: 'conversation_search',
  title: 'Search past conversations',
  description:
    'Find your past conversations by what was said (full text) and what it was about (vector similarity), in their messages and in the files linked to them, fused into one ranking, or the ones similar to a given conversation (similar_to). Each result has a continuation_id: pass it to any tool to continue that conversation.',
  category: 'fast',
  inputSchema: {
    query: z.string().min(1).max(maxQueryChars).optional().describe('What to look for, e.g. "what did GLM say about the auth refactor".'),
    similar_to: z.string().optional().describe('Instead of a query: find conversations like this one (its continuation_id), e.g. duplicates.'),
    limit: z.number().int().min(1).max(50).optional().describe('Results, default 10.'),
    since: z.string().optional().describe('Only turns from this date or time on (ISO 8601).'),
    until: z.string().optional().describe('Only turns up to this date or time (ISO 8601).'),
    tool: z.string().max(100).optional().describe('Only conversations started by this tool, e.g. codereview.'),
    model: z.string().max(200).optional().describe('Only conversations a model of this name answered in.'),
    continuation_id: z.string().optional().describe('Search within this conversation only.'),
    threshold: z.number().min(0).max(1).optional().describe('Minimum similarity (0-1) for a match by meaning; default 0.2.'),
  },
  annotations: { readOnlyHint: true },
  scopes: ['conversations:read'],
  async run(args, context) {
    const { services } = context;
    if ((args.query === undefined) === (args.similar_to === undefined)) {
      throw new ExaiError('invalid_argument', 'Pass either query (what to look for) or similar_to (a continuation_id), not both and not neither.');
    }
    if (args.similar_to !== undefined) {
      const similar = await similarConversations({ db: services.db, embedder: services.search.embedder }, context.userId, parseThreadId(args.similar_to), {
        ...(args.limit === undefined ? {} : { limit: args.limit }),
        ...(args.threshold === undefined ? {} : { threshold: args.threshold }),
      });
      return { content: [{ type: 'text', text: answerText(similar) }], structuredContent: { ...similar } };
    }
    const from = parseDate(args.since, 'since');
    const to = parseDate(args.until, 'until');
    const answer = await searchConversations({ db: services.db, embedder: services.search.embedder, logger: services.logger }, context.userId, {
      query: args.query!,
      ...(args.limit === undefined ? {} : { limit: args.limit }),
      ...(args.threshold === undefined ? {} : { threshold: args.threshold }),
      ...(from === undefined ? {} : { from }),
      ...(to === undefined ? {} : { to }),
      ...(args.tool === undefined ? {} : { tool: args.tool }),
      ...(args.model === undefined ? {} : { model: args.model }),
      ...(args.continuation_id === undefined ? {} : { conversationId: parseThreadId(args.continuation_id) }),
    });
    return { content: [{ type: 'text', text: answerText(answer) }], structuredContent: { ...answer } };
  },
});
