/** Shared by the tier suites: objects with their real keys, temporary folders, and what a folder holds. */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SuiteCleanups } from '../../support/cleanups.js';

export interface TestObject {
  key: string;
  bytes: Buffer;
}

export function sha256Of(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Random bytes and the content address they would be stored under. */
export function randomObject(size: number): TestObject {
  const bytes = randomBytes(size);
  return { key: `sha256/${sha256Of(bytes)}`, bytes };
}

export function tempFolder(cleanups: SuiteCleanups, prefix: string): string {
  const folder = mkdtempSync(path.join(os.tmpdir(), `exai-${prefix}-`));
  cleanups.push(async () => rmSync(folder, { recursive: true, force: true }));
  return folder;
}

/** Every file (not folder) under `folder`, as paths relative to it. */
export function filesUnder(folder: string): string[] {
  if (!existsSync(folder)) return [];
  return readdirSync(folder, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(folder, path.join(entry.parentPath, entry.name)))
    .sort();
}

export function bytesUnder(folder: string): number {
  return filesUnder(folder).reduce((total, file) => total + statSync(path.join(folder, file)).size, 0);
}

/** Where the disk tier keeps `key`, relative to its folder. */
export function cachePath(key: string): string {
  const hex = key.slice('sha256/'.length);
  return path.join(hex.slice(0, 2), hex.slice(2, 4), hex);
}

/** Size and hash rather than toEqual: comparing large buffers element by element takes seconds. */
export function digestOf(bytes: Buffer | undefined): { size: number; sha256: string } | undefined {
  return bytes === undefined ? undefined : { size: bytes.length, sha256: sha256Of(bytes) };
}
