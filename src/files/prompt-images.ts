/**
 * Images a tool call sends to a vision model: absolute paths under the allowed
 * roots, or data URLs. Each becomes a data URL, checked for type and size.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ExaiError } from '../errors.js';
import { resolveAllowedPath } from './prompt-files.js';

const mimeByExtension: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.webp': 'image/webp' };
const dataUrlPattern = /^data:(image\/(?:png|jpeg|gif|webp));base64,([A-Za-z0-9+/]+={0,2})$/;

export async function readPromptImages(images: readonly string[], allowedRoots: readonly string[], maxImageBytes: number): Promise<string[]> {
  const urls: string[] = [];
  for (const image of images) {
    if (image.startsWith('data:')) {
      const match = dataUrlPattern.exec(image);
      if (!match) throw new ExaiError('invalid_argument', 'An image data URL must look like data:image/png;base64,… (png, jpeg, gif or webp).');
      const bytes = Math.floor((match[2]!.length * 3) / 4);
      if (bytes > maxImageBytes) throw new ExaiError('invalid_argument', `An image is ${bytes} bytes; the limit is ${maxImageBytes} (EXAI_MAX_IMAGE_BYTES).`);
      urls.push(image);
      continue;
    }
    const real = await resolveAllowedPath(image, allowedRoots);
    const mime = mimeByExtension[path.extname(real).toLowerCase()];
    if (mime === undefined) throw new ExaiError('invalid_argument', `Image ${image} is not a png, jpeg, gif or webp file.`);
    const size = (await stat(real)).size;
    if (size > maxImageBytes) throw new ExaiError('invalid_argument', `Image ${image} is ${size} bytes; the limit is ${maxImageBytes} (EXAI_MAX_IMAGE_BYTES).`);
    urls.push(`data:${mime};base64,${(await readFile(real)).toString('base64')}`);
  }
  return urls;
}
