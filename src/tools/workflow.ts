/**
 * The step ("workflow") tools. The calling assistant investigates by itself,
 * one step per call; exai keeps every step's findings in the thread and
 * answers with what to look at next. On the last step it hands the
 * consolidated findings and the relevant files to the expert model, unless the
 * caller is certain or opts out.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { consult, loadContinuation, storeTurns, threadTitle } from '../app/consult.js';
import type { Thread, Turn } from '../conversations/types.js';
import { ExaiError } from '../errors.js';
import { resolveAllowedPath } from '../files/prompt-files.js';
import { isUuid } from '../db/session.js';
import type { ToolCategory } from '../providers/model-choice.js';
import type { ToolName } from './names.js';
import { systemPrompts, type SystemPromptName } from './prompts.js';
import { consultArguments, modelResult, sharedParameters } from './shared.js';
import { defineTool, type ToolContext, type ToolDefinition } from './types.js';

export const confidenceLevels = ['exploring', 'low', 'medium', 'high', 'very_high', 'almost_certain', 'certain'] as const;

const issueSchema = z.object({ severity: z.enum(['critical', 'high', 'medium', 'low']), description: z.string().min(1) });

export const stepParameters = {
  step: z.string().min(1).describe('What you are doing in this step.'),
  step_number: z.number().int().min(1),
  total_steps: z.number().int().min(1).describe('Your estimate; it may change.'),
  next_step_required: z.boolean().describe('false on the last step, which hands all findings to the expert model.'),
  findings: z.string().describe('What you found in this step.'),
  files_checked: z.array(z.string()).optional(),
  relevant_files: z.array(z.string()).optional().describe('Absolute paths the expert should read.'),
  relevant_context: z.array(z.string()).optional().describe('Functions, classes or modules involved.'),
  issues_found: z.array(issueSchema).optional(),
  confidence: z.enum(confidenceLevels).optional(),
  hypothesis: z.string().optional(),
  backtrack_from_step: z.number().int().min(1).optional().describe('Discard the findings of this step number and later ones.'),
  use_assistant_model: z.boolean().optional().describe('false: finish without the expert model.'),
};

type StepArguments = z.output<z.ZodObject<typeof stepParameters>> & z.output<z.ZodObject<typeof sharedParameters>> & Record<string, unknown>;

/** One stored step, as kept in the user turn's metadata. */
interface StoredStep {
  tool: string;
  step_number: number;
  total_steps: number;
  step: string;
  findings: string;
  relevant_files: string[];
  files_checked: string[];
  relevant_context: string[];
  issues_found: z.output<typeof issueSchema>[];
  confidence: string | null;
  hypothesis: string | null;
  backtrack_from_step: number | null;
  extra: Record<string, unknown>;
}

export interface ServerContext {
  /** Shown to the expert under its own heading. */
  text: string;
  /** One line for the caller about what the server read. */
  summary: string;
}

export interface StepToolSpec<Extra extends z.ZodRawShape> {
  name: ToolName;
  title: string;
  description: string;
  category: ToolCategory;
  prompt: SystemPromptName;
  extra: Extra;
  /** What to look at first, in this tool's terms. */
  firstActions: string[];
  /** What to keep doing in later steps. */
  laterActions: string[];
  /** The expert's task on the last step. */
  expertTask: string;
  /** Context the server gathers itself (precommit reads git). */
  gather?: (args: StepArguments, context: ToolContext) => Promise<ServerContext | undefined>;
}

function toStoredStep(tool: string, args: StepArguments, extraKeys: string[]): StoredStep {
  const extra: Record<string, unknown> = {};
  for (const key of extraKeys) if (args[key] !== undefined) extra[key] = args[key];
  return {
    tool,
    step_number: args.step_number,
    total_steps: Math.max(args.total_steps, args.step_number),
    step: args.step,
    findings: args.findings,
    relevant_files: union([args.relevant_files ?? [], args.files ?? []]),
    files_checked: args.files_checked ?? [],
    relevant_context: args.relevant_context ?? [],
    issues_found: args.issues_found ?? [],
    confidence: args.confidence ?? null,
    hypothesis: args.hypothesis ?? null,
    backtrack_from_step: args.backtrack_from_step ?? null,
    extra,
  };
}

function storedStep(turn: Turn, tool: string): StoredStep | undefined {
  const step = (turn.metadata as { workflow?: StoredStep }).workflow;
  return turn.role === 'user' && step?.tool === tool ? step : undefined;
}

/** The steps of the current run of this tool in the thread (since its latest step 1), backtracks applied. */
function currentRun(thread: Thread | undefined, tool: string): { steps: StoredStep[]; turnIds: Set<string> } {
  const turns = thread?.turns ?? [];
  let start = turns.length;
  for (let index = turns.length - 1; index >= 0; index -= 1) {
    const step = storedStep(turns[index]!, tool);
    if (step === undefined) continue;
    start = index;
    if (step.step_number === 1) break;
  }
  const steps: StoredStep[] = [];
  const turnIds = new Set<string>();
  for (const turn of turns.slice(start)) {
    const step = storedStep(turn, tool);
    if (step === undefined) continue;
    turnIds.add(turn.id);
    applyStep(steps, step);
  }
  return { steps, turnIds };
}

function applyStep(steps: StoredStep[], step: StoredStep): void {
  const from = step.backtrack_from_step;
  if (from !== null) {
    for (let index = steps.length - 1; index >= 0; index -= 1) if (steps[index]!.step_number >= from) steps.splice(index, 1);
  }
  const same = steps.findIndex((earlier) => earlier.step_number === step.step_number);
  if (same >= 0) steps.splice(same, 1);
  steps.push(step);
  steps.sort((a, b) => a.step_number - b.step_number);
}

/** The tool-specific fields of a run, the newest value of each. */
function mergedExtra(steps: readonly StoredStep[]): Record<string, unknown> {
  return Object.assign({}, ...steps.map((step) => step.extra)) as Record<string, unknown>;
}

function stepText(step: StoredStep): string {
  const lines = [`Step ${step.step_number} of ${step.total_steps}: ${step.step}`];
  if (step.findings) lines.push(`Findings: ${step.findings}`);
  if (step.hypothesis) lines.push(`Hypothesis: ${step.hypothesis}`);
  if (step.confidence) lines.push(`Confidence: ${step.confidence}`);
  if (step.issues_found.length > 0) lines.push(`Issues: ${step.issues_found.map((issue) => `[${issue.severity}] ${issue.description}`).join('; ')}`);
  if (step.relevant_context.length > 0) lines.push(`Relevant code: ${step.relevant_context.join(', ')}`);
  for (const [key, value] of Object.entries(step.extra)) lines.push(`${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
  return lines.join('\n');
}

function union(lists: string[][]): string[] {
  return [...new Set(lists.flat())];
}

function consolidated(spec: { expertTask: string }, steps: StoredStep[], gathered: ServerContext | undefined): string {
  const files = union(steps.map((step) => step.relevant_files));
  const checked = union(steps.map((step) => step.files_checked));
  const parts = [
    `The assistant investigated in ${steps.length} step${steps.length === 1 ? '' : 's'}. Its work, in order:`,
    steps.map(stepText).join('\n\n'),
  ];
  if (checked.length > 0) parts.push(`Files it examined: ${checked.join(', ')}`);
  if (files.length > 0) parts.push(`Files it marked relevant (their contents follow): ${files.join(', ')}`);
  if (gathered !== undefined) parts.push(gathered.text);
  parts.push(`Your task: ${spec.expertTask}`);
  return parts.join('\n\n');
}

function requiredActions(spec: { firstActions: string[]; laterActions: string[] }, step: StoredStep): string[] {
  const actions = step.step_number === 1 ? [...spec.firstActions] : [...spec.laterActions];
  if (step.confidence === 'exploring' || step.confidence === 'low') actions.push('Gather more evidence before settling on a conclusion; test your hypothesis against the code.');
  if (step.step_number + 1 >= step.total_steps) actions.push('If this is enough, make the next call your last one (next_step_required: false) with all relevant_files.');
  return actions;
}

/** Every path must be readable and every stored file id the caller's own, before a step is stored. */
async function checkPaths(paths: readonly string[], context: ToolContext): Promise<void> {
  for (const file of paths) {
    if (isUuid(file)) await context.services.files.info(context.userId, file);
    else await resolveAllowedPath(file, context.services.config.files);
  }
}

/** A step tool from its spec: one schema, one engine. */
export function defineStepTool<Extra extends z.ZodRawShape>(spec: StepToolSpec<Extra>): ToolDefinition {
  const extraKeys = Object.keys(spec.extra);
  return defineTool({
    name: spec.name,
    title: spec.title,
    description: `${spec.description} Call it once per step of your own investigation; the last step (next_step_required: false) gets the expert model's analysis.`,
    category: spec.category,
    inputSchema: { ...stepParameters, ...spec.extra, ...sharedParameters },
    async run(rawArgs, context): Promise<CallToolResult> {
      const args = rawArgs as unknown as StepArguments;
      if (args.step_number > 1 && args.continuation_id === undefined) {
        throw new ExaiError('invalid_argument', `step_number is ${args.step_number} but continuation_id is missing: pass the continuation_id returned by step 1.`);
      }
      if (args.backtrack_from_step !== undefined && args.backtrack_from_step > args.step_number) {
        throw new ExaiError('invalid_argument', `backtrack_from_step (${args.backtrack_from_step}) must not be after this step (${args.step_number}).`);
      }
      const { services } = context;
      const thread = await loadContinuation(services, context.userId, args.continuation_id);
      const step = toStoredStep(spec.name, args, extraKeys);
      // Refused paths fail the call now, before anything is stored.
      await checkPaths(step.relevant_files, context);
      const run = currentRun(args.step_number === 1 ? undefined : thread, spec.name);
      applyStep(run.steps, step);
      const stored = stepText(step);
      // Tool-specific fields given on an earlier step (precommit's path) hold until changed.
      const merged = { ...mergedExtra(run.steps), ...args } as StepArguments;

      const storeStep = async () => {
        const { threadId, results } = await storeTurns(services, context.userId, thread, { toolName: spec.name, title: threadTitle(args.step) }, [
          { role: 'user', content: stored, toolName: spec.name, files: step.relevant_files, metadata: { workflow: step }, idempotencyKey: `${context.requestId}:step` },
        ]);
        services.search.notify();
        return { threadId, turnCount: results[0]!.turn.seq };
      };

      if (args.next_step_required) {
        const gathered = step.step_number === 1 && spec.gather ? await spec.gather(merged, context) : undefined;
        const { threadId, turnCount } = await storeStep();
        const actions = requiredActions(spec, step);
        const guidance = [
          `Step ${step.step_number} of ${step.total_steps} recorded (${run.steps.length} step${run.steps.length === 1 ? '' : 's'} of findings so far).`,
          ...(gathered ? [gathered.summary] : []),
          ...(args.images !== undefined || args.model !== undefined ? ['Note: model and images take effect on the last step, when the expert model is asked.'] : []),
          `Before calling ${spec.name} with step ${step.step_number + 1}, investigate yourself:`,
          ...actions.map((action) => `- ${action}`),
        ].join('\n');
        return {
          content: [{ type: 'text', text: `${guidance}\n\n---\ncontinuation_id: ${threadId}` }],
          structuredContent: {
            status: `pause_for_${spec.name}`,
            continuation_id: threadId,
            model: null,
            provider: null,
            content: guidance,
            step_number: step.step_number,
            total_steps: step.total_steps,
            next_step_required: true,
            required_actions: actions,
            turn_count: turnCount,
          },
        };
      }

      const skipExpert = args.use_assistant_model === false || step.confidence === 'certain';
      if (skipExpert) {
        const { threadId, turnCount } = await storeStep();
        const summary = `Investigation complete without the expert model (${args.use_assistant_model === false ? 'use_assistant_model is false' : 'confidence is certain'}).\n\n${run.steps.map(stepText).join('\n\n')}`;
        return {
          content: [{ type: 'text', text: `${summary}\n\n---\ncontinuation_id: ${threadId}` }],
          structuredContent: { status: 'complete_without_expert', continuation_id: threadId, model: null, provider: null, content: summary, step_number: step.step_number, total_steps: step.total_steps, next_step_required: false, turn_count: turnCount },
        };
      }

      context.progress('gathering findings for the expert model');
      const gathered = spec.gather ? await spec.gather(merged, context) : undefined;
      // The run's step turns are consolidated into the prompt; sending them as history too would repeat them.
      const history = thread === undefined ? undefined : { ...thread, turns: thread.turns.filter((turn) => !run.turnIds.has(turn.id)) };
      // This call's files must be readable; earlier steps' files are sent when they still are.
      const files = step.relevant_files;
      const earlierFiles = union(run.steps.filter((entry) => entry !== step).map((entry) => entry.relevant_files));
      context.progress('asking the expert model');
      const result = await consult(
        services,
        { ...consultArguments(stored, args), files },
        {
          contextFiles: earlierFiles,
          userId: context.userId,
          toolName: spec.name,
          category: spec.category,
          systemPrompt: systemPrompts[spec.prompt],
          modelPrompt: consolidated(spec, run.steps, gathered),
          turnMetadata: { workflow: step },
          ...(history === undefined ? {} : { thread: history }),
          requestId: context.requestId,
          signal: context.signal,
          onDelta: () => context.onDelta(),
        },
      );
      return modelResult(result, { status: 'analysis_complete', step_number: step.step_number, total_steps: step.total_steps, next_step_required: false, steps_consolidated: run.steps.length });
    },
  });
}
