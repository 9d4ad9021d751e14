/** The changes precommit reviews, read with git itself (no shell, bounded output). */
import { execFile } from 'node:child_process';
import { ExaiError } from '../errors.js';
import { resolveAllowedPath } from '../files/prompt-files.js';

export interface GitChangeRequest {
  path: string;
  compareTo?: string | undefined;
  includeStaged: boolean;
  includeUnstaged: boolean;
}

export interface GitChanges {
  /** `git diff --stat` lines of each part. */
  summary: string;
  diff: string;
  truncated: boolean;
}

const refPattern = /^[A-Za-z0-9][A-Za-z0-9._/~^@{}-]*$/;

function git(cwd: string, args: string[], maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('git', ['-C', cwd, '--no-pager', ...args], { maxBuffer: maxBytes * 4, timeout: 30_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) {
        const reason = (stderr || error.message).trim().split('\n')[0] ?? 'git failed';
        reject(new ExaiError('invalid_argument', `git ${args[0]} in ${cwd} failed: ${reason}`));
      } else resolve(stdout);
    });
  });
}

export async function readGitChanges(request: GitChangeRequest, allowedRoots: readonly string[], maxBytes: number): Promise<GitChanges> {
  const repo = await resolveAllowedPath(request.path, allowedRoots);
  if (request.compareTo !== undefined && !refPattern.test(request.compareTo)) {
    throw new ExaiError('invalid_argument', `compare_to ${JSON.stringify(request.compareTo)} is not a git ref; pass a branch, tag or commit such as main or HEAD~1.`);
  }
  const parts: { label: string; args: string[] }[] = [];
  if (request.compareTo !== undefined) parts.push({ label: `changes against ${request.compareTo}`, args: [request.compareTo, '--'] });
  else {
    if (request.includeStaged) parts.push({ label: 'staged changes', args: ['--cached', '--'] });
    if (request.includeUnstaged) parts.push({ label: 'unstaged changes', args: ['--'] });
  }
  if (parts.length === 0) throw new ExaiError('invalid_argument', 'Nothing to review: set include_staged or include_unstaged, or compare_to.');
  let summary = '';
  let diff = '';
  for (const part of parts) {
    const stat = await git(repo, ['diff', '--stat', ...part.args], maxBytes);
    const patch = await git(repo, ['diff', '--no-color', '--no-ext-diff', ...part.args], maxBytes);
    summary += `${part.label}:\n${stat.trim() || '(none)'}\n`;
    if (patch.trim() !== '') diff += `### ${part.label}\n${patch}\n`;
  }
  const truncated = Buffer.byteLength(diff) > maxBytes;
  if (truncated) diff = `${Buffer.from(diff).subarray(0, maxBytes).toString('utf8')}\n[diff truncated at ${maxBytes} bytes]`;
  return { summary: summary.trim(), diff, truncated };
}
