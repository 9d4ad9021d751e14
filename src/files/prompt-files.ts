/**
 * Reads the files a tool call names so they can go into a prompt. Only paths
 * under the allowed roots are read, after symlinks are resolved (a link inside
 * a root that points outside it is refused). A path that is refused fails the
 * call; a file that is readable but cannot be used (too large, binary, over the
 * token budget) is skipped and reported, so the caller knows what the model saw.
 */
import { open, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { countTokens } from '../conversations/tokens.js';
import { ExaiError } from '../errors.js';
import { isUuid } from '../db/session.js';
import { extractText } from './processing/text-extraction.js';

/** Which of the server's files a call may read. */
export interface FileAccess {
  /** Folders whose files may be read; empty means none. */
  allowedRoots: readonly string[];
  /** exai's own state and secrets (EXAI_HOME, the .env file): never read, even under a root. */
  protectedPaths: readonly string[];
}

export interface FileLimits extends FileAccess {
  maxFileBytes: number;
  maxTotalBytes: number;
}

export interface EmbeddedFile {
  /** The path as the caller gave it (or as found under a folder it gave). */
  path: string;
  bytes: number;
  tokens: number;
  content: string;
}

export interface SkippedFile {
  path: string;
  reason: string;
}

/** Reads a stored file of the caller's by id (see FileHandler.readBytes). */
export type StoredFileReader = (
  id: string,
  limitFor: (file: { mimeType: string }) => number,
) => Promise<{ name: string; mimeType: string; bytes: Buffer }>;

export interface PromptFiles {
  embedded: EmbeddedFile[];
  skipped: SkippedFile[];
  tokens: number;
}

/** Folders that hold dependencies or build output, not what anyone asks about. */
const skippedFolders = new Set(['node_modules', '.git', 'dist', 'build', '.venv', '__pycache__', 'target', '.next']);
const maxFilesPerFolder = 200;

function isUnder(child: string, root: string): boolean {
  const relative = path.relative(root, child);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/** The allowed roots with their own symlinks resolved, so comparisons are between real paths. */
async function realRoots(roots: readonly string[]): Promise<string[]> {
  const resolved = await Promise.all(roots.map((root) => realpath(root).catch(() => undefined)));
  return resolved.filter((root): root is string => root !== undefined);
}

/** The real path of a file a caller named, or an error saying why it may not be read. */
export async function resolveAllowedPath(requested: string, access: FileAccess): Promise<string> {
  return resolveUnder(requested, access, await realRoots(access.allowedRoots));
}

/** `.env`, `.env.local` …: where secrets live, whatever folder they are in. */
const envFilePattern = /^\.env(\..+)?$/;

/** Protected folders as given and, where they exist, with their symlinks resolved: a real path is compared with both. */
async function protectedFolders(access: FileAccess): Promise<string[]> {
  return [...access.protectedPaths, ...(await realRoots(access.protectedPaths))];
}

function isProtected(real: string, folders: readonly string[]): boolean {
  return envFilePattern.test(path.basename(real)) || folders.some((protectedPath) => isUnder(real, protectedPath));
}

/** resolveAllowedPath with the roots' real paths already known (`allowed`). */
async function resolveUnder(requested: string, access: FileAccess, allowed: readonly string[]): Promise<string> {
  const roots = access.allowedRoots;
  if (roots.length === 0) {
    throw new ExaiError(
      'invalid_argument',
      'This server reads no files from its own disk for callers over the network (EXAI_ALLOWED_ROOTS is not set). Put the content in the prompt instead, or ask the operator to set EXAI_ALLOWED_ROOTS.',
    );
  }
  if (!path.isAbsolute(requested)) {
    throw new ExaiError('invalid_argument', `File ${JSON.stringify(requested)} is not an absolute path. Pass absolute paths, e.g. ${path.join(roots[0] ?? '/home/me/project', 'src/index.ts')}.`);
  }
  let real: string;
  try {
    real = await realpath(requested);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ExaiError('invalid_argument', `File ${requested} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? 'error'})`}.`);
  }
  if (!allowed.some((root) => isUnder(real, root))) {
    // Through a symlink the named path can sit inside a root while its target does not: name the target.
    const where = real === path.resolve(requested) ? `File ${requested} is` : `File ${requested} is a link to ${real}, which is`;
    throw new ExaiError(
      'invalid_argument',
      `${where} outside the folders exai may read (${roots.join(', ')}). Move it under one of them or add its folder to EXAI_ALLOWED_ROOTS.`,
    );
  }
  if (isProtected(real, await protectedFolders(access))) {
    throw new ExaiError('invalid_argument', `File ${requested} holds exai's own settings, secrets or data, which are never sent to a model.`);
  }
  return real;
}

/** The files under a folder, in name order, up to a cap; says what it left out. */
async function listFolder(folder: string, shownAs: string, out: { real: string; shown: string }[], skipped: SkippedFile[]): Promise<void> {
  let entries;
  try {
    entries = await readdir(folder, { withFileTypes: true });
  } catch (error) {
    skipped.push({ path: shownAs, reason: `folder cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})` });
    return;
  }
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    if (entry.name.startsWith('.') || skippedFolders.has(entry.name)) continue;
    const real = path.join(folder, entry.name);
    const shown = path.join(shownAs, entry.name);
    if (out.length >= maxFilesPerFolder) {
      skipped.push({ path: shown, reason: `the folder holds more than ${maxFilesPerFolder} files; name files or smaller folders` });
      return;
    }
    if (entry.isDirectory()) await listFolder(real, shown, out, skipped);
    else if (entry.isFile()) out.push({ real, shown });
    // Symlinks inside a folder are not followed: they could lead outside the allowed roots.
  }
}

/** An error as the reason a file was skipped: the notes add their own full stop. */
function skipReason(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\.+$/, '');
}

/** At most `bytes` bytes from the start of a file. */
export async function readHead(file: string, bytes: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Reads the named files (folders expand to the files under them) in order, within
 * the byte caps and `tokenBudget`. `strict` paths (this call's own) fail the call
 * when refused; the others (from earlier turns) are skipped with the reason.
 */
export async function readPromptFiles(
  requests: { path: string; strict: boolean }[],
  limits: FileLimits,
  tokenBudget: number,
  storedFile?: StoredFileReader,
): Promise<PromptFiles> {
  const result: PromptFiles = { embedded: [], skipped: [], tokens: 0 };
  if (requests.length === 0) return result;
  const allowed = realRoots(limits.allowedRoots);
  const guarded = protectedFolders(limits);
  const seen = new Set<string>();
  let totalBytes = 0;
  const add = (shown: string, content: string, bytes: number): void => {
    const tokens = countTokens(content);
    if (result.tokens + tokens > tokenBudget) {
      result.skipped.push({ path: shown, reason: `does not fit the model's file budget (${tokens} tokens, ${Math.max(0, tokenBudget - result.tokens)} left)` });
      return;
    }
    totalBytes += bytes;
    result.tokens += tokens;
    result.embedded.push({ path: shown, bytes, tokens, content });
  };
  for (const request of requests) {
    // A stored file's id (file_upload, POST /api/v1/files): paths are absolute, so an id is never a path.
    if (storedFile !== undefined && isUuid(request.path)) {
      if (seen.has(request.path.toLowerCase())) continue;
      seen.add(request.path.toLowerCase());
      try {
        const text = await storedFileText(request.path, storedFile, limits, limits.maxTotalBytes - totalBytes);
        add(text.shown, text.content, text.bytes);
      } catch (error) {
        if (request.strict) throw error;
        result.skipped.push({ path: request.path, reason: skipReason(error) });
      }
      continue;
    }
    let real: string;
    try {
      real = await resolveUnder(request.path, limits, await allowed);
    } catch (error) {
      if (request.strict) throw error;
      result.skipped.push({ path: request.path, reason: skipReason(error) });
      continue;
    }
    const files: { real: string; shown: string }[] = [];
    try {
      const info = await stat(real);
      if (info.isDirectory()) await listFolder(real, request.path, files, result.skipped);
      else if (info.isFile()) files.push({ real, shown: request.path });
      else {
        result.skipped.push({ path: request.path, reason: 'not a regular file' });
        continue;
      }
    } catch (error) {
      const reason = `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
      if (request.strict) throw new ExaiError('invalid_argument', `File ${request.path} ${reason}.`);
      result.skipped.push({ path: request.path, reason });
      continue;
    }
    for (const file of files) {
      if (seen.has(file.real)) continue;
      seen.add(file.real);
      if (isProtected(file.real, await guarded)) {
        result.skipped.push({ path: file.shown, reason: "exai's own settings, secrets or data are never sent to a model" });
        continue;
      }
      let bytes: Buffer;
      try {
        const size = (await stat(file.real)).size;
        if (size > limits.maxFileBytes) {
          result.skipped.push({ path: file.shown, reason: `too large: ${size} bytes, the limit is ${limits.maxFileBytes} (EXAI_MAX_FILE_BYTES)` });
          continue;
        }
        if (totalBytes + size > limits.maxTotalBytes) {
          result.skipped.push({ path: file.shown, reason: `the files of this call would pass ${limits.maxTotalBytes} bytes (EXAI_MAX_FILES_BYTES)` });
          continue;
        }
        // Never more than the limit is read, even if the file grew since stat.
        bytes = await readHead(file.real, Math.min(size, limits.maxFileBytes));
      } catch (error) {
        const reason = `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
        if (request.strict && files.length === 1) throw new ExaiError('invalid_argument', `File ${file.shown} ${reason}.`);
        result.skipped.push({ path: file.shown, reason });
        continue;
      }
      if (bytes.includes(0)) {
        result.skipped.push({ path: file.shown, reason: 'binary file' });
        continue;
      }
      add(file.shown, bytes.toString('utf8'), bytes.length);
    }
  }
  return result;
}

/** PDFs may be larger than their text; the text still counts against the per-file limit. */
const maxStoredDocumentBytes = 32 * 1024 * 1024;

/** A stored file as prompt text: documents through text extraction, shown by name and id. */
async function storedFileText(id: string, read: StoredFileReader, limits: FileLimits, bytesLeft: number): Promise<{ shown: string; content: string; bytes: number }> {
  let file: { name: string; mimeType: string; bytes: Buffer };
  try {
    file = await read(id, ({ mimeType }) => (mimeType === 'application/pdf' ? Math.max(limits.maxFileBytes, maxStoredDocumentBytes) : limits.maxFileBytes));
  } catch (error) {
    if (error instanceof ExaiError && error.code === 'too_large' && typeof error.details?.size === 'number') {
      throw new ExaiError('too_large', `File ${id.toLowerCase()} is ${error.details.size} bytes, the limit is ${String(error.details.limit)} (EXAI_MAX_FILE_BYTES); ask about it with smart_file_query instead.`);
    }
    throw error;
  }
  const shown = `${file.name} (file ${id.toLowerCase()})`;
  const extracted = await extractText({ bytes: file.bytes, mimeType: file.mimeType, name: file.name, maxChars: limits.maxFileBytes });
  const bytes = Buffer.byteLength(extracted.text);
  if (bytes > bytesLeft) throw new ExaiError('too_large', `${shown}: the files of this call would pass ${limits.maxTotalBytes} bytes (EXAI_MAX_FILES_BYTES).`);
  return { shown, content: extracted.text, bytes };
}

/** The files as one block of prompt text, each under a header naming it. */
export function formatFiles(files: readonly EmbeddedFile[]): string {
  return files.map((file) => `--- BEGIN FILE: ${file.path} ---\n${file.content}${file.content.endsWith('\n') ? '' : '\n'}--- END FILE: ${file.path} ---`).join('\n\n');
}
