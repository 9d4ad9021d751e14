/**
 * The tools end to end, as an MCP client uses them, over both transports: the
 * official SDK client against a real exai and a fake OpenAI-compatible
 * provider whose received requests are asserted exactly.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { toolNames } from '../../src/tools/names.js';
import { systemPrompts } from '../../src/tools/prompts.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { httpHarness, stdioHarness, type McpHarness } from './harness.js';

type Structured = Record<string, unknown> & { continuation_id: string; model: string | null; provider: string | null; content: string };

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<{ text: string; structured: Structured; isError: boolean }> {
  const result = await client.callTool({ name, arguments: args });
  const text = (result.content as { type: string; text: string }[]).map((part) => part.text).join('');
  return { text, structured: result.structuredContent as Structured, isError: result.isError === true };
}

const stepToolNames = ['thinkdeep', 'planner', 'codereview', 'precommit', 'debug', 'analyze', 'refactor', 'testgen', 'secaudit', 'docgen', 'tracer'];

describe.each([
  { transport: 'Streamable HTTP', makeHarness: httpHarness },
  { transport: 'stdio', makeHarness: stdioHarness },
])('the tools over $transport', ({ makeHarness }) => {
  let fake: FakeOpenAI;
  let work: string;
  let harness: McpHarness;
  let client: Client;
  let authFile: string;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    work = mkdtempSync(path.join(os.tmpdir(), 'exai-e2e-work-'));
    authFile = path.join(work, 'auth.ts');
    writeFileSync(authFile, 'export function verify(token) {\n  return decode(token);\n}\n');
    harness = await makeHarness({ GLM_API_KEY: 'glm-key', GLM_BASE_URL: fake.baseUrl, EXAI_ALLOWED_ROOTS: work });
    client = await harness.connect();
  });

  afterAll(async () => {
    await harness?.close();
    await fake?.close();
    rmSync(work, { recursive: true, force: true });
  });

  beforeEach(() => {
    fake.requests.length = 0;
    fake.fallback = { kind: 'answer', content: 'ok' };
  });

  it(`offers every tool within 12,000 tokens of schema`, async () => {
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name)).toEqual([...toolNames]);
    expect(countTokens(JSON.stringify(tools))).toBeLessThan(12_000);
  });

  it('continues one conversation across chat, a code review and a restart, sending exactly the history', async () => {
    fake.script({ kind: 'answer', content: 'A1: tokens need an expiry.', reasoning: 'R1' });
    const first = await call(client, 'chat', { prompt: 'Q1: is our auth sound?', model: 'glm-4.6' });
    expect(first.isError).toBe(false);
    expect(first.structured).toMatchObject({ model: 'glm-4.6', provider: 'glm', content: 'A1: tokens need an expiry.', turn_count: 2 });
    const id = first.structured.continuation_id;
    expect(first.text).toContain(`continuation_id: ${id}`);
    expect(fake.requests[0]!.body.messages).toEqual([
      { role: 'system', content: systemPrompts.chat },
      { role: 'user', content: 'Q1: is our auth sound?' },
    ]);

    // An intermediate step is guidance from exai itself: no model is called.
    const step1 = await call(client, 'codereview', {
      continuation_id: id,
      step: 'Read auth.ts',
      step_number: 1,
      total_steps: 2,
      next_step_required: true,
      findings: 'verify() never checks expiry',
      relevant_files: [authFile],
    });
    expect(step1.structured).toMatchObject({ status: 'pause_for_codereview', continuation_id: id, model: null, next_step_required: true });
    expect((step1.structured.required_actions as string[]).length).toBeGreaterThan(0);
    expect(fake.requests).toHaveLength(1);

    fake.script({ kind: 'answer', content: 'A2: add an exp check in verify().' });
    const step2 = await call(client, 'codereview', {
      continuation_id: id,
      step: 'Checked the callers',
      step_number: 2,
      total_steps: 2,
      next_step_required: false,
      findings: 'every route trusts verify()',
      issues_found: [{ severity: 'high', description: 'expired tokens accepted' }],
      confidence: 'high',
    });
    expect(step2.structured).toMatchObject({ status: 'analysis_complete', continuation_id: id, model: 'glm-4.6', content: 'A2: add an exp check in verify().', steps_consolidated: 2 });
    const fileBlock = `--- BEGIN FILE: ${authFile} ---\nexport function verify(token) {\n  return decode(token);\n}\n--- END FILE: ${authFile} ---`;
    const expertPrompt = [
      'The assistant investigated in 2 steps. Its work, in order:',
      'Step 1 of 2: Read auth.ts\nFindings: verify() never checks expiry\n\nStep 2 of 2: Checked the callers\nFindings: every route trusts verify()\nConfidence: high\nIssues: [high] expired tokens accepted',
      `Files it marked relevant (their contents follow): ${authFile}`,
      'Your task: Review the code and report the issues that matter, most severe first, with fixes.',
    ].join('\n\n');
    // The steps are consolidated into the expert's prompt, not repeated as history.
    expect(fake.requests[1]!.body.messages).toEqual([
      { role: 'system', content: systemPrompts.codereview },
      { role: 'user', content: 'Q1: is our auth sound?' },
      { role: 'assistant', content: 'A1: tokens need an expiry.', reasoning_content: 'R1' },
      { role: 'user', content: `${expertPrompt}\n\nFiles for reference:\n\n${fileBlock}` },
    ]);

    await harness.restart();
    client = await harness.connect();

    fake.script({ kind: 'answer', content: 'A3: fifteen minutes.' });
    const third = await call(client, 'chat', { prompt: 'Q3: how long should they live?', continuation_id: id });
    expect(third.structured).toMatchObject({ continuation_id: id, model: 'glm-4.6', turn_count: 7 });
    expect(fake.requests[2]!.body.messages).toEqual([
      { role: 'system', content: systemPrompts.chat },
      { role: 'user', content: 'Q1: is our auth sound?' },
      { role: 'assistant', content: 'A1: tokens need an expiry.', reasoning_content: 'R1' },
      { role: 'user', content: 'Step 1 of 2: Read auth.ts\nFindings: verify() never checks expiry' },
      { role: 'user', content: 'Step 2 of 2: Checked the callers\nFindings: every route trusts verify()\nConfidence: high\nIssues: [high] expired tokens accepted' },
      { role: 'assistant', content: 'A2: add an exp check in verify().' },
      // The file an earlier turn referred to is sent again, once, with the newest question.
      { role: 'user', content: `Q3: how long should they live?\n\nFiles for reference:\n\n${fileBlock}` },
    ]);

    const shown = await call(client, 'conversation_get', { continuation_id: id });
    expect((shown.structured.turns as { role: string; tool: string }[]).map((turn) => `${turn.role}:${turn.tool}`)).toEqual([
      'user:chat',
      'assistant:chat',
      'user:codereview',
      'user:codereview',
      'assistant:codereview',
      'user:chat',
      'assistant:chat',
    ]);
    const listed = await call(client, 'conversation_list', {});
    expect((listed.structured as unknown as { threads: { continuation_id: string }[] }).threads.map((thread) => thread.continuation_id)).toContain(id);
  });

  it('gets an answer from every AI tool, each with the same result shape', async () => {
    const results = [
      await call(client, 'chat', { prompt: 'hello' }),
      await call(client, 'challenge', { prompt: 'Caching everything forever is fine.' }),
      await call(client, 'consensus', { prompt: 'Adopt GraphQL?', models: [{ model: 'glm-4.6', stance: 'for' }, { model: 'glm-4.5', stance: 'against' }] }),
    ];
    for (const name of stepToolNames) {
      if (name === 'precommit') continue; // needs a repository: its own test
      results.push(await call(client, name, { step: `final ${name} step`, step_number: 1, total_steps: 1, next_step_required: false, findings: 'enough seen' }));
    }
    for (const result of results) {
      expect(result.isError, result.text).toBe(false);
      expect(result.structured).toMatchObject({ model: expect.any(String), provider: 'glm', content: 'ok' });
      expect(result.structured.continuation_id).toMatch(/^[0-9a-f-]{36}$/);
    }
    const systems = fake.requests.map((request) => (request.body.messages as { content: string }[])[0]!.content);
    expect(systems).toContain(systemPrompts.challenge);
    for (const name of stepToolNames.filter((tool) => tool !== 'precommit')) expect(systems).toContain(systemPrompts[name as keyof typeof systemPrompts]);
  });

  it('asks the consensus panel in parallel, each with its stance, then reconciles', async () => {
    fake.fallback = { kind: 'answer', content: 'a view', delayMs: 300 };
    const result = await call(client, 'consensus', {
      prompt: 'Should we shard the database?',
      models: [{ model: 'glm-4.6', stance: 'for' }, { model: 'glm-4.5', stance: 'against', stance_prompt: 'Think about operations.' }],
      model: 'glm-4.5-air',
    });
    expect(result.isError, result.text).toBe(false);
    expect(fake.peakConcurrency).toBeGreaterThanOrEqual(2);
    const [a, b, synthesis] = fake.requests;
    const panel = [a!, b!].map((request) => ({ model: request.body.model, system: (request.body.messages as { content: string }[])[0]!.content }));
    expect(panel.find((entry) => entry.model === 'glm-4.6')!.system).toContain('Your stance: for.');
    expect(panel.find((entry) => entry.model === 'glm-4.5')!.system).toMatch(/Your stance: against\.[\s\S]*Think about operations\./);
    expect(synthesis!.body.model).toBe('glm-4.5-air');
    const synthesisPrompt = (synthesis!.body.messages as { content: string }[]).at(-1)!.content;
    expect(synthesisPrompt).toContain('### glm-4.6 (stance: for)\na view');
    expect(synthesisPrompt).toContain('### glm-4.5 (stance: against)\na view');
    expect(result.structured).toMatchObject({ status: 'consensus_complete', model: 'glm-4.5-air' });
    expect((result.structured.views as unknown[]).length).toBe(2);
  });

  it('precommit reads the repository\u2019s changes itself and sends the diff to the expert', async () => {
    const repo = path.join(work, 'repo');
    mkdirSync(repo);
    const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args]);
    git('init', '-q');
    writeFileSync(path.join(repo, 'app.js'), 'console.log(1);\n');
    git('add', 'app.js');
    git('commit', '-qm', 'first');
    writeFileSync(path.join(repo, 'app.js'), 'console.log(2);\n');
    const first = await call(client, 'precommit', { step: 'Look at the changes', step_number: 1, total_steps: 2, next_step_required: true, findings: 'one file changed', path: repo });
    expect(first.text).toContain('app.js');
    // The repository named on step 1 holds for the rest of the run.
    await call(client, 'precommit', { continuation_id: first.structured.continuation_id, step: 'Done', step_number: 2, total_steps: 2, next_step_required: false, findings: 'looks fine' });
    const prompt = (fake.requests[0]!.body.messages as { content: string }[]).at(-1)!.content;
    expect(prompt).toContain('-console.log(1);');
    expect(prompt).toContain('+console.log(2);');
  });

  it('checks a consensus request fully before asking any model, and notes a panel member that failed', async () => {
    const outside = await call(client, 'consensus', { prompt: 'p', models: [{ model: 'glm-4.6' }], files: ['/etc/hostname'] });
    expect(outside.isError).toBe(true);
    expect(outside.text).toContain('EXAI_ALLOWED_ROOTS');
    const unknown = await call(client, 'consensus', { prompt: 'p', models: [{ model: 'glm-4.6' }, { model: 'gpt-9' }] });
    expect(unknown.isError).toBe(true);
    expect(unknown.text).toContain('Model "gpt-9" is not available');
    expect(fake.requests).toHaveLength(0);

    fake.script({ kind: 'error', status: 400, body: { error: { message: 'model overloaded with nonsense' } } }, { kind: 'answer', content: 'view B' }, { kind: 'answer', content: 'reconciled' });
    const partial = await call(client, 'consensus', { prompt: 'Rewrite in Rust?', models: [{ model: 'glm-4.6' }, { model: 'glm-4.5' }], model: 'glm-4.5-air', files: [authFile] });
    expect(partial.isError, partial.text).toBe(false);
    expect(partial.text).toMatch(/^Note: glm-4\.(6|5) gave no view/);
    expect(partial.structured.content).toBe('reconciled');
    // Every panel member saw the file.
    for (const request of fake.requests.slice(0, 2)) expect((request.body.messages as { content: string }[]).at(-1)!.content).toContain('BEGIN FILE');
  });

  it('sends images to vision models only, and web search where the model has it', async () => {
    const pixel = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
    const seen = await call(client, 'chat', { prompt: 'What is in this image?', images: [pixel] });
    expect(seen.structured.model).toBe('glm-4.5v');
    expect((fake.requests[0]!.body.messages as { content: unknown }[]).at(-1)!.content).toEqual([
      { type: 'text', text: 'What is in this image?' },
      { type: 'image_url', image_url: { url: pixel } },
    ]);
    const blind = await call(client, 'chat', { prompt: 'And this?', images: [pixel], model: 'glm-4.5-air' });
    expect(blind.isError).toBe(true);
    expect(blind.text).toContain('glm-4.5-air cannot read images');

    await call(client, 'chat', { prompt: 'Latest Node release?', model: 'glm-4.6', use_websearch: true });
    expect(fake.requests.at(-1)!.body.tools).toEqual([expect.objectContaining({ type: 'web_search' })]);
  });

  it('expands a folder, reports what it sent, and stores the files with the turn', async () => {
    const folder = path.join(work, 'lib');
    mkdirSync(folder);
    writeFileSync(path.join(folder, 'a.ts'), 'export const a = 1;\n');
    writeFileSync(path.join(folder, 'b.bin'), Buffer.from([1, 0, 2]));
    mkdirSync(path.join(folder, 'node_modules'));
    writeFileSync(path.join(folder, 'node_modules', 'x.js'), 'ignored\n');
    const result = await call(client, 'chat', { prompt: 'Review lib', files: [folder], model: 'glm-4.6' });
    expect(result.structured.files).toEqual({ embedded: [path.join(folder, 'a.ts')], skipped: [{ path: path.join(folder, 'b.bin'), reason: 'binary file' }] });
    expect(result.text).toContain(`Note: File ${path.join(folder, 'b.bin')} was not sent: binary file.`);
    const sent = (fake.requests[0]!.body.messages as { content: string }[]).at(-1)!.content;
    expect(sent).toContain('export const a = 1;');
    expect(sent).not.toContain('ignored');
  });
});

describe('choosing the tools offered', () => {
  it('offers only EXAI_TOOLS, minus EXAI_DISABLED_TOOLS', async () => {
    const harness = await httpHarness({ EXAI_TOOLS: 'chat,version,codereview', EXAI_DISABLED_TOOLS: 'codereview' });
    try {
      const client = await harness.connect();
      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name)).toEqual(['chat', 'version']);
      const refused = await client.callTool({ name: 'codereview', arguments: {} });
      expect(refused.isError).toBe(true);
    } finally {
      await harness.close();
    }
  });
});
