/**
 * The official MCP conformance suite (@modelcontextprotocol/conformance 0.1.12,
 * the last that runs on Node 20) against /mcp of a real `exai serve`, for the
 * scenarios that apply to a server with tools and logging.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preparedHome, repositoryRoot, startServe, type ServeProcess } from '../support/cli.js';

const scenarios = ['server-initialize', 'ping', 'tools-list', 'logging-set-level', 'dns-rebinding-protection', 'server-sse-multiple-streams'];
const conformance = path.join(repositoryRoot, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');

function run(url: string, scenario: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [conformance, 'server', '--url', url, '--scenario', scenario], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('MCP conformance of /mcp', () => {
  let home: string;
  let server: ServeProcess;

  beforeAll(async () => {
    home = await preparedHome();
    server = await startServe({ EXAI_HOME: home, EXAI_AUTH: 'local' });
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it.each(scenarios)('passes %s', async (scenario) => {
    const result = await run(`${server.url}/mcp`, scenario);
    expect(result.output).toMatch(/Passed: (\d+)\/\1, 0 failed/);
    expect(result.code).toBe(0);
  });
});
