/**
 * The changes precommit reviews, read with git itself: no shell, the
 * repository's own hooks and helpers off (textconv, external diff, fsmonitor),
 * only the part of the repository under the given folder, and output cut at a
 * byte limit while it streams.
 */
import { spawn } from 'node:child_process';
import { ExaiError } from '../errors.js';
import { resolveAllowedPath, type FileAccess } from '../files/prompt-files.js';

export interface GitChangeRequest {
  path: string;
  compareTo?: string | undefined;
  includeStaged: boolean;
  includeUnstaged: boolean;
}

export interface GitChanges {
  /** `git diff --stat` of each part, and the untracked files. */
  summary: string;
  diff: string;
  truncated: boolean;
}

const refPattern = /^[A-Za-z0-9][A-Za-z0-9._/~^@{}-]*$/;
const gitTimeoutMs = 30_000;
const safety = ['-c', 'core.fsmonitor=false', '--no-pager'];

/** Runs git, keeping at most `maxBytes` of its output; the rest is dropped and git stopped. */
function git(cwd: string, args: string[], maxBytes: number): Promise<{ output: string; truncated: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', [...safety, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
    const chunks: Buffer[] = [];
    let bytes = 0;
    let truncated = false;
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), gitTimeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      if (truncated) return;
      if (bytes + chunk.length > maxBytes) {
        chunks.push(chunk.subarray(0, maxBytes - bytes));
        truncated = true;
        child.kill();
        return;
      }
      chunks.push(chunk);
      bytes += chunk.length;
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new ExaiError('internal', `git could not be run: ${error.message}. Install git on the server to use precommit.`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const output = Buffer.concat(chunks).toString('utf8');
      if (truncated) return resolve({ output, truncated });
      if (signal === 'SIGKILL') return reject(new ExaiError('timeout', `git ${args[0]} in ${cwd} took longer than ${gitTimeoutMs / 1000} s.`));
      if (code !== 0) {
        const reason = stderr.trim().split('\n')[0] ?? 'git failed';
        return reject(new ExaiError('invalid_argument', `git ${args[0]} in ${cwd} failed: ${reason}`));
      }
      resolve({ output, truncated: false });
    });
  });
}

export async function readGitChanges(request: GitChangeRequest, access: FileAccess, maxBytes: number): Promise<GitChanges> {
  const folder = await resolveAllowedPath(request.path, access);
  if (request.compareTo !== undefined && !refPattern.test(request.compareTo)) {
    throw new ExaiError('invalid_argument', `compare_to ${JSON.stringify(request.compareTo)} is not a git ref; pass a branch, tag or commit such as main or HEAD~1.`);
  }
  const parts: { label: string; args: string[] }[] = [];
  if (request.compareTo !== undefined) parts.push({ label: `changes against ${request.compareTo}`, args: [request.compareTo] });
  else {
    if (request.includeStaged) parts.push({ label: 'staged changes', args: ['--cached'] });
    if (request.includeUnstaged) parts.push({ label: 'unstaged changes', args: [] });
  }
  if (parts.length === 0) throw new ExaiError('invalid_argument', 'Nothing to review: set include_staged or include_unstaged, or compare_to.');
  // Outside a repository `git diff` compares files instead; say plainly what is wrong.
  await git(folder, ['rev-parse', '--is-inside-work-tree'], 1024).catch(() => {
    throw new ExaiError('invalid_argument', `${request.path} is not inside a git repository; pass the repository's folder as path.`);
  });
  // `-- .` keeps git to this folder even when the repository reaches above the allowed root.
  const diffOptions = ['--no-color', '--no-ext-diff', '--no-textconv'];
  let summary = '';
  let diff = '';
  let truncated = false;
  for (const part of parts) {
    const stat = await git(folder, ['diff', '--stat', ...diffOptions, ...part.args, '--', '.'], 64 * 1024);
    summary += `${part.label}:\n${stat.output.trim() || '(none)'}\n`;
    const left = maxBytes - Buffer.byteLength(diff);
    if (left <= 0) {
      truncated = true;
      continue;
    }
    const patch = await git(folder, ['diff', ...diffOptions, ...part.args, '--', '.'], left);
    truncated ||= patch.truncated;
    if (patch.output.trim() !== '') diff += `### ${part.label}\n${patch.output}\n`;
  }
  const untracked = await git(folder, ['ls-files', '--others', '--exclude-standard', '--', '.'], 64 * 1024);
  if (untracked.output.trim() !== '') summary += `untracked files (not in the diff; add them to review them):\n${untracked.output.trim()}\n`;
  if (truncated) {
    diff += `\n[the diff was cut at ${maxBytes} bytes]`;
    summary += `The diff is longer than ${maxBytes} bytes; only its start is reviewed. Review large changes in parts (compare_to, or a narrower path).\n`;
  }
  return { summary: summary.trim(), diff, truncated };
}
