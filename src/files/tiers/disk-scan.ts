/** What a cache directory holds, read back from its file names at startup: the index is never written down, so it cannot disagree with the files. */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { objectKey } from '../storage/object-store.js';

export interface ScannedEntry {
  key: string;
  size: number;
  mtimeMs: number;
}

const fanOut = /^[0-9a-f]{2}$/;
const hexName = /^[0-9a-f]{64}$/;

async function names(folder: string): Promise<string[]> {
  return readdir(folder).catch(() => [] as string[]);
}

/** Entries laid out as `<directory>/ab/cd/<hex>`; anything else (tmp, strays) is left alone. */
export async function scanEntries(directory: string): Promise<ScannedEntry[]> {
  const found: ScannedEntry[] = [];
  for (const first of (await names(directory)).filter((name) => fanOut.test(name))) {
    for (const second of (await names(path.join(directory, first))).filter((name) => fanOut.test(name))) {
      const folder = path.join(directory, first, second);
      const files = (await names(folder)).filter((name) => hexName.test(name) && name.startsWith(first + second));
      const infos = await Promise.all(files.map((name) => stat(path.join(folder, name)).catch(() => undefined)));
      files.forEach((name, index) => {
        const info = infos[index];
        if (info?.isFile() === true) found.push({ key: objectKey(name), size: info.size, mtimeMs: info.mtimeMs });
      });
    }
  }
  return found;
}
