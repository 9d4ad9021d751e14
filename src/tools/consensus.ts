/**
 * consensus: several models judge one proposal in parallel, each from an
 * assigned stance, then one model reconciles their views. The views are kept
 * with the question in the thread; the reconciliation is the answer.
 */
import { z } from 'zod';
import { checkStorable, composeMessages, consult, loadContinuation, modelFor, parseConsultInput, prepareFiles } from '../app/consult.js';
import { contextBudget, historyFiles } from '../conversations/history.js';
import { ExaiError, isExaiError } from '../errors.js';
import { systemPrompts } from './prompts.js';
import { consultArguments, modelResult, sharedParameters } from './shared.js';
import { defineTool } from './types.js';

const stanceGuidance = {
  for: 'Argue the strongest honest case for the proposal; do not invent benefits, and still name fatal flaws if you find them.',
  against: 'Argue the strongest honest case against the proposal; do not invent problems, and concede where it is clearly right.',
  neutral: 'Weigh the proposal evenly.',
} as const;

const modelEntry = z.object({
  model: z.string().min(1),
  stance: z.enum(['for', 'against', 'neutral']).optional(),
  stance_prompt: z.string().optional().describe('Extra instructions for this model.'),
});

export const consensusTool = defineTool({
  name: 'consensus',
  title: 'Consensus from several models',
  description: 'Ask several models in parallel for their view of a proposal (each with a stance), then reconcile the views into one recommendation.',
  category: 'reasoning',
  inputSchema: {
    prompt: z.string().min(1).describe('The proposal or question, with its context.'),
    models: z.array(modelEntry).min(1).max(5).describe('Models to consult, e.g. [{"model":"kimi","stance":"for"},{"model":"glm","stance":"against"}].'),
    ...sharedParameters,
  },
  async run(args, context) {
    const { services } = context;
    const registry = services.router.registry;
    // Everything is checked before the first model is paid for: arguments, models, thread, files and images.
    const request = parseConsultInput(consultArguments(args.prompt, args));
    checkStorable(services, request.prompt);
    const panel = args.models.map((entry) => ({ ...entry, info: registry.resolve(entry.model), stance: entry.stance ?? 'neutral' }));
    const thread = await loadContinuation(services, context.userId, args.continuation_id);
    const reconciler = modelFor(services, request, thread, 'reasoning').model;
    if ((request.images?.length ?? 0) > 0) {
      const blind = panel.filter((member) => !member.info.capabilities.vision).map((member) => member.info.name);
      if (blind.length > 0) throw new ExaiError('invalid_argument', `${blind.join(', ')} cannot read images; choose vision models for the panel or leave out "images".`);
    }
    const turns = thread?.turns ?? [];
    const smallest = Math.min(reconciler.contextWindow, ...panel.map((member) => member.info.contextWindow));
    const prepared = await prepareFiles(services, request, historyFiles(turns), contextBudget(smallest).files, context.userId);
    const panelMessages = panel.map((member) =>
      composeMessages(
        member.info,
        `${systemPrompts.consensusView}\n\nYour stance: ${member.stance}. ${stanceGuidance[member.stance]}${member.stance_prompt ? `\n${member.stance_prompt}` : ''}`,
        args.prompt,
        turns,
        prepared,
      ).messages,
    );

    context.progress(`asking ${panel.length} model${panel.length === 1 ? '' : 's'}`);
    let done = 0;
    const views = await Promise.all(
      panel.map(async (member, index) => {
        try {
          const answer = await services.router.chat({
            model: member.info.name,
            tool: 'consensus',
            messages: panelMessages[index]!,
            ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
            ...(request.thinkingMode === undefined ? {} : { thinking: request.thinkingMode !== 'minimal' }),
            ...(request.webSearch === undefined ? {} : { webSearch: request.webSearch }),
            signal: context.signal,
          });
          return { model: answer.model, provider: answer.provider, stance: member.stance, content: answer.content, error: null };
        } catch (error) {
          if (context.signal.aborted) throw error;
          const reason = isExaiError(error) ? error.message : 'internal error';
          return { model: member.info.name, provider: member.info.provider, stance: member.stance, content: null, error: reason };
        } finally {
          done += 1;
          context.progress(`${done} of ${panel.length} views in`);
        }
      }),
    );
    const answered = views.filter((view) => view.content !== null);
    if (answered.length === 0) {
      throw new ExaiError('provider_unavailable', `No model of the panel could answer: ${views.map((view) => `${view.model}: ${view.error}`).join('; ')}`);
    }
    const viewText = views
      .map((view) => `### ${view.model} (stance: ${view.stance})\n${view.content ?? `(no answer: ${view.error})`}`)
      .join('\n\n');
    context.progress('reconciling the views');
    const result = await consult(services, { ...request, model: reconciler.name }, {
      userId: context.userId,
      toolName: 'consensus',
      category: 'reasoning',
      systemPrompt: systemPrompts.consensusSynthesis,
      modelPrompt: `Proposal:\n${args.prompt}\n\nThe views:\n\n${viewText}\n\nReconcile them into one recommendation.`,
      turnMetadata: { consensus: views },
      // The files the panel saw, read once for the smallest window among panel and reconciler.
      prepared,
      ...(thread === undefined ? {} : { thread }),
      requestId: context.requestId,
      signal: context.signal,
      onDelta: () => context.onDelta(),
    });
    const answer = modelResult(result, { status: 'consensus_complete', views });
    const failed = views.filter((view) => view.content === null);
    if (failed.length > 0) {
      const first = answer.content[0] as { type: 'text'; text: string };
      first.text = `${failed.map((view) => `Note: ${view.model} gave no view (${view.error}); the reconciliation rests on the others.`).join('\n')}\n\n${first.text}`;
    }
    return answer;
  },
});
