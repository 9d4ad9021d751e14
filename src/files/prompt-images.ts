/**
 * Images a tool call sends to a vision model: absolute paths under the allowed
 * roots, or data URLs. Each becomes a data URL, checked for type and size.
 */
import path from 'node:path';
import { ExaiError } from '../errors.js';
import { readHead, resolveAllowedPath, type FileAccess } from './prompt-files.js';

const mimeByExtension: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.webp': 'image/webp' };
const dataUrlPattern = /^data:(image\/(?:png|jpeg|gif|webp));base64,([A-Za-z0-9+/]+={0,2})$/;

export async function readPromptImages(images: readonly string[], access: FileAccess, maxImageBytes: number): Promise<string[]> {
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
    const real = await resolveAllowedPath(image, access);
    const mime = mimeByExtension[path.extname(real).toLowerCase()];
    if (mime === undefined) throw new ExaiError('invalid_argument', `Image ${image} is not a png, jpeg, gif or webp file.`);
    // Read one byte past the limit: a file that grew since any check is still caught.
    const bytes = await readHead(real, maxImageBytes + 1);
    if (bytes.length > maxImageBytes) throw new ExaiError('invalid_argument', `Image ${image} is larger than ${maxImageBytes} bytes (EXAI_MAX_IMAGE_BYTES).`);
    urls.push(`data:${mime};base64,${bytes.toString('base64')}`);
  }
  return urls;
}
