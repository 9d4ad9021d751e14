/**
 * The text layer of a PDF, page by page, with unpdf (a build of Mozilla's
 * pdf.js without native dependencies or a worker). Scanned pages have no text
 * layer and give none: there is no OCR here.
 */
import { ExaiError } from '../../errors.js';
import { cutAt } from './utf8-text.js';

export interface PdfText {
  text: string;
  pages: number;
  truncated: boolean;
}

/** pdf.js's VerbosityLevel.ERRORS: its warnings about damaged files would go to stdout, which the stdio transport owns. */
const ERRORS_ONLY = 0;

/** Pages are separated by a blank line, so page breaks stay visible to a model. */
const PAGE_BREAK = '\n\n';

type PdfLoader = typeof import('unpdf');
let loader: Promise<PdfLoader> | undefined;

/** pdf.js is 1.6 MB of JavaScript: loaded on the first PDF, not when exai starts. */
function loadUnpdf(): Promise<PdfLoader> {
  loader ??= import('unpdf');
  return loader;
}

/** Reads pages until `maxChars` characters are collected; the rest are not parsed. */
export async function extractPdfText(bytes: Buffer, maxChars: number, label: string): Promise<PdfText> {
  const { getDocumentProxy } = await loadUnpdf();
  // A copy: pdf.js may take over (detach) the buffer it is given, and the caller keeps `bytes`.
  const data = new Uint8Array(bytes);
  const pdf = await getDocumentProxy(data, { verbosity: ERRORS_ONLY, disableFontFace: true, stopAtErrors: false }).catch((error: unknown) => {
    throw unreadable(error, label);
  });
  try {
    const parts: string[] = [];
    let length = 0;
    let pageNumber = 1;
    for (; pageNumber <= pdf.numPages && length <= maxChars; pageNumber++) {
      const page = await pdf.getPage(pageNumber);
      const content = await page.getTextContent();
      let text = '';
      for (const item of content.items) {
        if ('str' in item) text += item.str + (item.hasEOL ? '\n' : '');
      }
      page.cleanup();
      const part = (parts.length > 0 ? PAGE_BREAK : '') + text.trimEnd();
      parts.push(part);
      length += part.length;
    }
    const text = parts.join('');
    const truncated = text.length > maxChars || pageNumber <= pdf.numPages;
    return { text: cutAt(text, maxChars), pages: pdf.numPages, truncated };
  } catch (error) {
    throw unreadable(error, label);
  } finally {
    await pdf.destroy();
  }
}

function unreadable(error: unknown, label: string): ExaiError {
  if (error instanceof ExaiError) return error;
  const name = error instanceof Error ? error.name : '';
  const reason = (error instanceof Error ? error.message : String(error)).replace(/\.$/, '');
  if (name === 'PasswordException') {
    return new ExaiError('unsupported_media_type', `${label} is a password-protected PDF; remove the password and send it again.`, { cause: error });
  }
  return new ExaiError('invalid_argument', `${label} is not a readable PDF (${reason}).`, { cause: error });
}
