/** The step tools, each a spec for the one workflow engine. */
import { z } from 'zod';
import { readGitChanges } from './git-changes.js';
import { defineStepTool } from './workflow.js';

const thinkdeep = defineStepTool({
  name: 'thinkdeep',
  title: 'Think deeper with an expert model',
  description: 'Structured deep reasoning on a hard problem, with an expert model checking your conclusions.',
  category: 'reasoning',
  prompt: 'thinkdeep',
  extra: { focus_areas: z.array(z.string()).optional().describe('e.g. architecture, performance, security.') },
  firstActions: ['State the problem and what a good answer must satisfy.', 'List the approaches worth considering and the evidence each needs.', 'Read the code and docs that bear on it.'],
  laterActions: ['Test the leading idea against edge cases and failure modes.', 'Note what would change your mind.'],
  expertTask: 'Assess the reasoning, name its gaps, and give your own considered conclusion.',
});

const planner = defineStepTool({
  name: 'planner',
  title: 'Plan step by step',
  description: 'Build a plan one step at a time, with revisions and branches; an expert model reviews the finished plan.',
  category: 'reasoning',
  prompt: 'planner',
  extra: {
    is_step_revision: z.boolean().optional(),
    revises_step_number: z.number().int().min(1).optional(),
    is_branch_point: z.boolean().optional(),
    branch_from_step: z.number().int().min(1).optional(),
    branch_id: z.string().optional(),
  },
  firstActions: ['Write down the goal, constraints and what done looks like.', 'Break the work into the first few coarse steps.'],
  laterActions: ['Refine the next step: inputs, outputs, how to verify it.', 'Revise or branch earlier steps if they no longer hold.'],
  expertTask: 'Review the plan and return an improved, ordered plan with verification per step.',
});

const codereview = defineStepTool({
  name: 'codereview',
  title: 'Code review',
  description: 'Systematic code review (quality, security, performance, architecture) with expert validation.',
  category: 'reasoning',
  prompt: 'codereview',
  extra: {
    review_type: z.enum(['full', 'security', 'performance', 'quick']).optional(),
    focus_on: z.string().optional(),
    standards: z.string().optional().describe('Coding standards to enforce.'),
    severity_filter: z.enum(['critical', 'high', 'medium', 'low', 'all']).optional(),
  },
  firstActions: ['Read the code under review and what it is meant to do.', 'Map its entry points, data flow and dependencies.'],
  laterActions: ['Check correctness, error handling, security, performance and tests.', 'Record each issue with severity in issues_found.'],
  expertTask: 'Review the code and report the issues that matter, most severe first, with fixes.',
});

const precommit = defineStepTool({
  name: 'precommit',
  title: 'Pre-commit validation',
  description: 'Validate git changes before committing; exai reads the diff itself.',
  category: 'reasoning',
  prompt: 'precommit',
  extra: {
    path: z.string().optional().describe('Absolute path of the git repository (default: the first allowed root).'),
    compare_to: z.string().optional().describe('Review changes against this ref instead of staged/unstaged.'),
    include_staged: z.boolean().optional(),
    include_unstaged: z.boolean().optional(),
  },
  firstActions: ['Look at every changed file and why it changed.', 'Check that callers, tests and docs follow the change.'],
  laterActions: ['Look for regressions, leftover debug code and secrets.', 'Record each problem with severity in issues_found.'],
  expertTask: 'Decide whether these changes are ready to commit; list blocking issues first.',
  async gather(args, context) {
    const { files } = context.services.config;
    const changes = await readGitChanges(
      {
        path: typeof args.path === 'string' ? args.path : (files.allowedRoots[0] ?? ''),
        compareTo: typeof args.compare_to === 'string' ? args.compare_to : undefined,
        includeStaged: args.include_staged !== false,
        includeUnstaged: args.include_unstaged !== false,
      },
      files,
      // About 50K tokens: room in every model's input for the diff, the findings and the files.
      Math.min(files.maxTotalBytes, 200_000),
    );
    return {
      summary: `Changes found:\n${changes.summary}`,
      text: `The changes under review (read by the server):\n${changes.summary}\n\n${changes.diff || '(no diff)'}`,
    };
  },
});

const debug = defineStepTool({
  name: 'debug',
  title: 'Debug and find the root cause',
  description: 'Systematic root-cause investigation with hypotheses, evidence and expert validation.',
  category: 'reasoning',
  prompt: 'debug',
  extra: {},
  firstActions: ['Reproduce or restate the symptom precisely: inputs, expected, actual, logs.', 'Find the code path that produces it.'],
  laterActions: ['Test your hypothesis: what evidence would confirm or rule it out?', 'Narrow down until one cause explains every symptom.'],
  expertTask: 'Identify the most likely root cause, the minimal fix and how to confirm it.',
});

const analyze = defineStepTool({
  name: 'analyze',
  title: 'Analyse code',
  description: 'Analyse architecture, performance, quality or dependencies of code, with expert validation.',
  category: 'reasoning',
  prompt: 'analyze',
  extra: { analysis_type: z.enum(['architecture', 'performance', 'security', 'quality', 'general']).optional() },
  firstActions: ['Map the structure: modules, entry points, data flow.', 'Note the main dependencies and boundaries.'],
  laterActions: ['Assess strengths and risks, with evidence from the code.'],
  expertTask: 'Give the analysis: architecture, risks and ranked recommendations.',
});

const refactor = defineStepTool({
  name: 'refactor',
  title: 'Find refactorings',
  description: 'Find code smells and refactoring opportunities, with expert validation.',
  category: 'reasoning',
  prompt: 'refactor',
  extra: {
    refactor_type: z.enum(['codesmells', 'decompose', 'modernize', 'organization']).optional(),
    focus_areas: z.array(z.string()).optional(),
  },
  firstActions: ['Read the code and note what makes it hard to change.', 'Check how well tests cover it.'],
  laterActions: ['For each opportunity: where, why, and the risk of changing it.'],
  expertTask: 'Propose the refactorings worth doing, smallest safe steps first.',
});

const testgen = defineStepTool({
  name: 'testgen',
  title: 'Generate tests',
  description: 'Work out what needs tests and have an expert model write them.',
  category: 'balanced',
  prompt: 'testgen',
  extra: {},
  firstActions: ['Read the code under test and the existing tests and framework.', 'List behaviours, edge cases and failure paths.'],
  laterActions: ['Prioritise the cases by risk.'],
  expertTask: 'Write the tests for the listed behaviours in the project\'s framework.',
});

const secaudit = defineStepTool({
  name: 'secaudit',
  title: 'Security audit',
  description: 'Systematic security audit (OWASP, secrets, auth, input handling) with expert validation.',
  category: 'reasoning',
  prompt: 'secaudit',
  extra: {
    security_scope: z.string().optional().describe('What is in scope: components, data, users.'),
    threat_level: z.enum(['low', 'medium', 'high', 'critical']).optional(),
    audit_focus: z.enum(['owasp', 'compliance', 'infrastructure', 'dependencies', 'comprehensive']).optional(),
  },
  firstActions: ['Identify the attack surface: inputs, auth boundaries, secrets, dependencies.', 'Note where untrusted data enters.'],
  laterActions: ['Follow untrusted data to where it is used.', 'Record each vulnerability with severity in issues_found.'],
  expertTask: 'Report the vulnerabilities with severity, attack scenario and fix.',
});

const docgen = defineStepTool({
  name: 'docgen',
  title: 'Generate documentation',
  description: 'Document code: purpose, parameters, errors, complexity, with an expert model writing the docs.',
  category: 'balanced',
  prompt: 'docgen',
  extra: {},
  firstActions: ['List the modules, classes and functions that need documentation.'],
  laterActions: ['Note each one\'s behaviour, parameters, errors and complexity.'],
  expertTask: 'Write the documentation comments for the code named.',
});

const tracer = defineStepTool({
  name: 'tracer',
  title: 'Trace code',
  description: 'Trace execution flow or dependencies of a symbol, with expert validation.',
  category: 'reasoning',
  prompt: 'tracer',
  extra: { trace_mode: z.enum(['precision', 'dependencies']).optional().describe('precision: call flow; dependencies: what uses what.') },
  firstActions: ['Find the symbol\'s definition and its entry points.'],
  laterActions: ['Follow each call (or each dependency) one level further.'],
  expertTask: 'Describe the traced flow or dependencies step by step.',
});

export const stepTools = [thinkdeep, planner, codereview, precommit, debug, analyze, refactor, testgen, secaudit, docgen, tracer];
