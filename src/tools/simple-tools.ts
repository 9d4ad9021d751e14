/** The single-call AI tools: chat and challenge. */
import { z } from 'zod';
import { consult } from '../app/consult.js';
import { systemPrompts } from './prompts.js';
import { consultArguments, modelResult, sharedParameters } from './shared.js';
import { defineTool, type ToolContext } from './types.js';

function consultOptions(context: ToolContext, toolName: string) {
  return {
    userId: context.userId,
    toolName,
    requestId: context.requestId,
    signal: context.signal,
    onDelta: () => context.onDelta(),
  };
}

export const chatTool = defineTool({
  name: 'chat',
  title: 'Chat with a second-opinion model',
  description:
    'Ask Kimi, GLM or another configured model for a second opinion: brainstorm, check an idea, compare approaches. A continued conversation keeps its model unless you name another.',
  category: 'balanced',
  inputSchema: { prompt: z.string().min(1).describe('The question, with the context the model needs.'), ...sharedParameters },
  async run(args, context) {
    const result = await consult(context.services, consultArguments(args.prompt, args), {
      ...consultOptions(context, 'chat'),
      category: 'balanced',
      systemPrompt: systemPrompts.chat,
    });
    return modelResult(result);
  },
});

export const challengeTool = defineTool({
  name: 'challenge',
  title: 'Challenge a statement',
  description: 'Have a model test a claim, plan or your own conclusion critically instead of agreeing by reflex.',
  category: 'balanced',
  inputSchema: { prompt: z.string().min(1).describe('The statement or plan to challenge.'), ...sharedParameters },
  async run(args, context) {
    const result = await consult(context.services, consultArguments(args.prompt, args), {
      ...consultOptions(context, 'challenge'),
      category: 'balanced',
      systemPrompt: systemPrompts.challenge,
      modelPrompt: `Evaluate this critically:\n\n${args.prompt}`,
    });
    return modelResult(result);
  },
});
