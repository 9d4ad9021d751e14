/** precommit's git reading, on real repositories. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGitChanges } from '../../src/tools/git-changes.js';
import { expectExaiError } from '../support/assertions.js';

describe('reading git changes', () => {
  let repo: string;
  const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args]);

  beforeAll(() => {
    repo = mkdtempSync(path.join(os.tmpdir(), 'exai-git-'));
    git('init', '-q');
    mkdirSync(path.join(repo, 'inside'));
    writeFileSync(path.join(repo, 'inside', 'a.txt'), 'one\n');
    writeFileSync(path.join(repo, 'outside.txt'), 'secret v1\n');
    git('add', '.');
    git('commit', '-qm', 'first');
    writeFileSync(path.join(repo, 'inside', 'a.txt'), `${'changed line\n'.repeat(2000)}`);
    writeFileSync(path.join(repo, 'outside.txt'), 'secret v2\n');
    writeFileSync(path.join(repo, 'inside', 'new.txt'), 'untracked\n');
  });

  afterAll(() => rmSync(repo, { recursive: true, force: true }));

  it('stays inside the allowed folder even when the repository reaches above it', async () => {
    const inside = path.join(repo, 'inside');
    const changes = await readGitChanges({ path: inside, includeStaged: true, includeUnstaged: true }, { allowedRoots: [inside], protectedPaths: [] }, 1_000_000);
    expect(changes.diff).toContain('+changed line');
    expect(changes.diff).not.toContain('secret');
    expect(changes.summary).toContain('untracked files');
    expect(changes.summary).toContain('new.txt');
  });

  it('cuts a long diff at the byte limit and says so', async () => {
    const changes = await readGitChanges({ path: repo, includeStaged: false, includeUnstaged: true }, { allowedRoots: [repo], protectedPaths: [] }, 4_000);
    expect(changes.truncated).toBe(true);
    expect(Buffer.byteLength(changes.diff)).toBeLessThan(4_200);
    expect(changes.summary).toContain('only its start is reviewed');
  });

  it('refuses refs that could be options, folders outside the roots, and folders that are not repositories', async () => {
    const option = await expectExaiError(readGitChanges({ path: repo, compareTo: '--output=/tmp/x', includeStaged: true, includeUnstaged: true }, { allowedRoots: [repo], protectedPaths: [] }, 1000));
    expect(option.message).toContain('is not a git ref');
    const outside = await expectExaiError(readGitChanges({ path: os.tmpdir(), includeStaged: true, includeUnstaged: true }, { allowedRoots: [repo], protectedPaths: [] }, 1000));
    expect(outside.message).toContain('EXAI_ALLOWED_ROOTS');
    const plain = mkdtempSync(path.join(os.tmpdir(), 'exai-nogit-'));
    try {
      const notRepo = await expectExaiError(readGitChanges({ path: plain, includeStaged: true, includeUnstaged: true }, { allowedRoots: [plain], protectedPaths: [] }, 1000));
      expect(notRepo.message).toBe(`${plain} is not inside a git repository; pass the repository's folder as path.`);
    } finally {
      rmSync(plain, { recursive: true, force: true });
    }
  });
});
