/**
 * Where a running embedded owner can be reached: its loopback URL and a token
 * for its internal API, in a file only the owning OS user can read.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface OwnerInfo {
  pid: number;
  url: string;
  token: string;
  version: string;
  startedAt: string;
  /** settingsFingerprint() of the server's configuration. */
  settings?: string;
}

export function ownerInfoPath(home: string): string {
  return path.join(home, 'owner.json');
}

export function newOwnerToken(): string {
  return randomBytes(32).toString('base64url');
}

export function writeOwnerInfo(home: string, info: OwnerInfo): void {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const file = ownerInfoPath(home);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(info), { mode: 0o600 });
  // rename is atomic: a reader sees the old file or the new one, never half of one.
  renameSync(temporary, file);
}

export function readOwnerInfo(home: string): OwnerInfo | undefined {
  try {
    return JSON.parse(readFileSync(ownerInfoPath(home), 'utf8')) as OwnerInfo;
  } catch {
    return undefined;
  }
}

/**
 * How to reach the server that holds the lock, once it has said so: owner.json
 * appears when the server listens, and may be left from an earlier owner.
 */
export function servingOwner(home: string, holder: { pid: number; role: string } | undefined): OwnerInfo | undefined {
  if (holder?.role !== 'server') return undefined;
  const owner = readOwnerInfo(home);
  return owner?.pid === holder.pid ? owner : undefined;
}

export function removeOwnerInfo(home: string, pid: number): void {
  const info = readOwnerInfo(home);
  if (info?.pid === pid) rmSync(ownerInfoPath(home), { force: true });
}
