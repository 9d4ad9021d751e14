/**
 * No Docker engine runs here, so the container files are kept honest by
 * running what they run: the HEALTHCHECK command of the Dockerfile and of the
 * compose file, against a real server, as the container's environment sets it.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanEnv, preparedHome, repositoryRoot, startServe, type ServeProcess } from '../support/cli.js';

function dockerfileHealthcheck(): string[] {
  const dockerfile = readFileSync(path.join(repositoryRoot, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');
  const match = /^HEALTHCHECK .*?CMD (\[.*\])\s*$/m.exec(dockerfile);
  if (!match) throw new Error('Dockerfile has no HEALTHCHECK … CMD [...] line');
  return JSON.parse(match[1]!) as string[];
}

function composeHealthcheck(): string[] {
  const compose = readFileSync(path.join(repositoryRoot, 'docker-compose.yml'), 'utf8');
  const exaiService = compose.slice(compose.search(/^ {2}exai:/m), compose.search(/^ {2}postgres:/m));
  const match = /test: (\[.*\])/.exec(exaiService);
  if (!match) throw new Error('docker-compose.yml has no healthcheck test for the exai service');
  const command = JSON.parse(match[1]!) as string[];
  expect(command[0]).toBe('CMD');
  return command.slice(1);
}

function run(command: string[], env: Record<string, string>): Promise<number | null> {
  return new Promise((resolve, reject) => {
    // The image's WORKDIR is the project root and `node` its Node.js.
    const [program, ...args] = command;
    const child = spawn(program === 'node' ? process.execPath : program!, args, { cwd: repositoryRoot, env: cleanEnv(env), stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', resolve);
  });
}

describe('container health checks', () => {
  let home: string | undefined;
  let server: ServeProcess | undefined;
  afterAll(async () => {
    if (server !== undefined && server.child.exitCode === null) await server.kill9();
    if (home !== undefined) rmSync(home, { recursive: true, force: true });
  });

  it('ships every path the image copies and runs', () => {
    const dockerfile = readFileSync(path.join(repositoryRoot, 'Dockerfile'), 'utf8');
    const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((match) => match[1]!.split(/\s+/));
    expect(copied).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'src', 'bench', 'bin', 'src/db/sql']));
    for (const source of copied) expect(existsSync(path.join(repositoryRoot, source)), source).toBe(true);
    expect(dockerfile).toContain('CMD ["node", "bin/exai.js", "serve"]');
  });

  it('passes against a healthy server and fails when none answers, as the image configures it', async () => {
    home = await preparedHome();
    server = await startServe({ EXAI_HOME: home });
    const port = new URL(server.url).port;
    // In the image EXAI_HOST is 0.0.0.0 (listen everywhere); the check must still reach the server.
    const containerEnv = { EXAI_HOST: '0.0.0.0', EXAI_PORT: port, EXAI_HOME: home };
    expect(await run(dockerfileHealthcheck(), containerEnv)).toBe(0);
    expect(await run(composeHealthcheck(), containerEnv)).toBe(0);
    await server.stop();
    expect(await run(dockerfileHealthcheck(), containerEnv)).toBe(1);
    expect(await run(composeHealthcheck(), containerEnv)).toBe(1);
  });
});
