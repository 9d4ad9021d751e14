/** The step tools' memory of a run: backtracking, finishing without the expert, and a new run in the same thread. */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { httpHarness, type McpHarness } from './harness.js';

describe('step tools', () => {
  let fake: FakeOpenAI;
  let harness: McpHarness;
  let client: Client;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    harness = await httpHarness({ GLM_API_KEY: 'glm-key', GLM_BASE_URL: fake.baseUrl });
    client = await harness.connect();
  });

  afterAll(async () => {
    await harness?.close();
    await fake?.close();
  });

  beforeEach(() => {
    fake.requests.length = 0;
  });

  const step = async (args: Record<string, unknown>) => {
    const result = await client.callTool({ name: 'debug', arguments: { total_steps: 3, next_step_required: true, ...args } });
    return { isError: result.isError === true, structured: result.structuredContent as Record<string, unknown>, text: (result.content as { text: string }[])[0]!.text };
  };

  const expertPrompt = () => (fake.requests.at(-1)!.body.messages as { content: string }[]).at(-1)!.content;

  it('drops backtracked findings from what the expert sees', async () => {
    const first = await step({ step: 'Reproduce', step_number: 1, findings: 'crash on empty input' });
    const id = first.structured.continuation_id as string;
    await step({ continuation_id: id, step: 'Blame the parser', step_number: 2, findings: 'WRONG LEAD: parser bug', hypothesis: 'parser' });
    await step({ continuation_id: id, step: 'Check the loader instead', step_number: 2, backtrack_from_step: 2, findings: 'loader returns undefined' });
    const last = await step({ continuation_id: id, step: 'Confirm', step_number: 3, next_step_required: false, findings: 'guard fixes it', confidence: 'high' });
    expect(last.structured).toMatchObject({ status: 'analysis_complete', steps_consolidated: 3 });
    expect(expertPrompt()).toContain('loader returns undefined');
    expect(expertPrompt()).not.toContain('WRONG LEAD');
    expect(fake.requests).toHaveLength(1);
  });

  it('keeps steps in order when one is sent again, and stores nothing for a step that fails', async () => {
    const first = await step({ step: 'One', step_number: 1, findings: 'first' });
    const id = first.structured.continuation_id as string;
    await step({ continuation_id: id, step: 'Two', step_number: 2, findings: 'second' });
    await step({ continuation_id: id, step: 'Three', step_number: 3, findings: 'third' });
    await step({ continuation_id: id, step: 'Two again', step_number: 2, findings: 'second, revised' });
    await step({ continuation_id: id, step: 'Four', step_number: 4, total_steps: 4, next_step_required: false, findings: 'fourth' });
    const prompt = expertPrompt();
    const order = ['Findings: first', 'Findings: second, revised', 'Findings: third', 'Findings: fourth'].map((text) => prompt.indexOf(text));
    expect(order.every((position) => position >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);

    const listed = async () => ((await client.callTool({ name: 'conversation_list', arguments: { limit: 100 } })).structuredContent as { threads: unknown[] }).threads.length;
    const before = await listed();
    const refused = await client.callTool({
      name: 'precommit',
      arguments: { step: 'Look', step_number: 1, total_steps: 2, next_step_required: true, findings: 'x', path: '/' },
    });
    expect(refused.isError).toBe(true);
    expect(await listed()).toBe(before);
  });

  it('finishes without the expert when certain or told not to use it', async () => {
    const certain = await step({ step: 'Obvious typo', step_number: 1, total_steps: 1, next_step_required: false, findings: 'misspelt variable', confidence: 'certain' });
    expect(certain.structured).toMatchObject({ status: 'complete_without_expert', model: null, provider: null });
    expect(certain.text).toContain('misspelt variable');
    const optOut = await step({ step: 'Done', step_number: 1, total_steps: 1, next_step_required: false, findings: 'x', use_assistant_model: false });
    expect(optOut.structured.status).toBe('complete_without_expert');
    expect(fake.requests).toHaveLength(0);
  });

  it('starts a new run at step 1 in the same thread, without the old run\u2019s findings', async () => {
    const first = await step({ step: 'Old run', step_number: 1, findings: 'OLD FINDING' });
    const id = first.structured.continuation_id as string;
    await step({ continuation_id: id, step: 'New run', step_number: 1, findings: 'new finding' });
    await step({ continuation_id: id, step: 'End', step_number: 2, total_steps: 2, next_step_required: false, findings: 'done' });
    expect(expertPrompt()).toContain('new finding');
    expect(expertPrompt()).not.toContain('Findings: OLD FINDING');
  });

  it('refuses a later step without the continuation id, and a backtrack to the future', async () => {
    const orphan = await step({ step: 'Lost', step_number: 2, findings: 'x' });
    expect(orphan.isError).toBe(true);
    expect(orphan.text).toContain('pass the continuation_id returned by step 1');
    const first = await step({ step: 'Start', step_number: 1, findings: 'x' });
    const future = await step({ continuation_id: first.structured.continuation_id, step: 'Back', step_number: 2, backtrack_from_step: 3, findings: 'x' });
    expect(future.isError).toBe(true);
    expect(future.text).toContain('backtrack_from_step (3) must not be after this step (2)');
  });
});
