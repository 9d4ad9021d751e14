/** Runs the real `exai` command in child processes, as users and orchestrators do. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openPglite } from '../../src/db/pglite.js';
import { readOwnerInfo, type OwnerInfo } from '../../src/embedded/owner-info.js';
import { pgliteSnapshotBlob } from './backends.js';
import type { SuiteCleanups } from './cleanups.js';

export const repositoryRoot = path.resolve(import.meta.dirname, '..', '..');
export const exaiBin = path.join(repositoryRoot, 'bin', 'exai.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Only what the command needs: no developer .env, no stray EXAI_* or TEST_* settings. */
export function cleanEnv(extra: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? os.tmpdir(), EXAI_PORT: '0', ...extra };
}

export function runCli(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [exaiBin, ...args], { env: cleanEnv(env), cwd: os.tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`exai ${args.join(' ')} did not finish within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code once the process has ended. */
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
  kill9(): Promise<number | null>;
}

/** Starts `exai serve` and waits until it says it is serving (or fails to start). */
export function startServe(env: Record<string, string>, timeoutMs = 60_000): Promise<ServeProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [exaiBin, 'serve'], { env: cleanEnv(env), cwd: os.tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let settled = false;
    const exited = new Promise<number | null>((done) => child.on('close', (code) => done(code)));
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      reject(new Error(`exai serve did not start within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      if (settled) return;
      for (const line of stderr.split('\n')) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'exai is serving' && entry.url !== undefined) {
          settled = true;
          clearTimeout(timer);
          const url = entry.url;
          resolve({
            child,
            url,
            stdout: () => stdout,
            stderr: () => stderr,
            exited,
            stop: async () => {
              child.kill('SIGTERM');
              return exited;
            },
            kill9: async () => {
              child.kill('SIGKILL');
              return exited;
            },
          });
        }
      }
    });
    void exited.then((code) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(Object.assign(new Error(`exai serve exited with ${code}: ${stderr}`), { code, stderr }));
    });
  });
}

/** A fresh EXAI_HOME whose embedded database is already migrated (from the test snapshot). */
export async function preparedHome(): Promise<string> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'exai-test-home-'));
  const db = await openPglite(path.join(home, 'pgdata'), { loadDataDir: pgliteSnapshotBlob() });
  await db.close();
  return home;
}

/** The owner's internal API, as the CLI calls it. */
export async function ownerApi<T>(home: string, method: string, route: string, body?: unknown): Promise<{ status: number; body: T }> {
  const owner: OwnerInfo | undefined = readOwnerInfo(home);
  if (owner === undefined) throw new Error(`no owner.json in ${home}`);
  const init: RequestInit = { method, headers: { authorization: `Bearer ${owner.token}` } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { ...init.headers, 'content-type': 'application/json' };
  }
  const response = await fetch(new URL(`/internal/v1${route}`, owner.url), init);
  return { status: response.status, body: (await response.json()) as T };
}

/** An empty EXAI_HOME, removed with the suite's cleanups. */
export function tempHome(cleanups: SuiteCleanups): string {
  const home = mkdtempSync(path.join(os.tmpdir(), 'exai-test-home-'));
  cleanups.push(async () => rmSync(home, { recursive: true, force: true }));
  return home;
}
