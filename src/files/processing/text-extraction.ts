/**
 * The text of a document users send, for a prompt: plain text, Markdown,
 * source code, data (JSON, YAML, CSV, XML) and PDF. The format says how the
 * text should be shown: prose, Markdown, or code to fence.
 */
import { ExaiError } from '../../errors.js';
import { bareMimeType, isTextMimeType, mimeTypeFor } from './mime-types.js';
import { extractPdfText } from './pdf-text.js';
import { decodeUtf8Text } from './utf8-text.js';

export { mimeTypeFor } from './mime-types.js';

export type TextFormat = 'text' | 'markdown' | 'code' | 'pdf';

export interface ExtractTextInput {
  bytes: Buffer;
  /** The declared type; the name decides when it is absent or application/octet-stream. */
  mimeType?: string;
  name: string;
  /** The most characters (UTF-16 units) to return; longer text is cut and marked truncated. */
  maxChars: number;
}

export interface ExtractedText {
  text: string;
  format: TextFormat;
  truncated: boolean;
  /** PDFs only: the document's page count. */
  pages?: number;
}

const SUPPORTED = 'plain text, Markdown, source code, JSON, YAML, CSV, XML and PDF';

const markdownTypes = new Set(['text/markdown', 'text/x-markdown']);

/** Text that is data or prose rather than code, shown as it is. */
const plainTypes = new Set([
  'text/plain',
  'text/csv',
  'text/tab-separated-values',
  'text/x-rst',
  'text/asciidoc',
  'application/csv',
  'application/json',
  'application/x-ndjson',
  'application/jsonl',
  'application/yaml',
  'application/x-yaml',
  'text/yaml',
  'text/x-yaml',
  'application/toml',
  'application/xml',
  'text/xml',
]);

function formatOf(type: string): TextFormat | undefined {
  if (type === 'application/pdf') return 'pdf';
  if (markdownTypes.has(type)) return 'markdown';
  if (plainTypes.has(type) || type.endsWith('+json') || type.endsWith('+xml')) return 'text';
  // Everything else that is text is source code: text/x-python, text/javascript, text/html, application/sql…
  if (isTextMimeType(type)) return 'code';
  return undefined;
}

export async function extractText(input: ExtractTextInput): Promise<ExtractedText> {
  const { bytes, name, maxChars } = input;
  if (!Number.isSafeInteger(maxChars) || maxChars < 1) {
    throw new ExaiError('invalid_argument', `maxChars must be a whole number ≥ 1, not ${maxChars}.`);
  }
  const type = mimeTypeFor(name, input.mimeType);
  const format = formatOf(type);
  const label = `File ${JSON.stringify(name)}`;
  if (format === undefined) {
    throw new ExaiError('unsupported_media_type', `${label} is ${type}; text can be read from ${SUPPORTED} files only.`, {
      details: { mimeType: type, declaredMimeType: bareMimeType(input.mimeType) || undefined },
    });
  }
  if (format === 'pdf') {
    const pdf = await extractPdfText(bytes, maxChars, label);
    return { text: pdf.text, format, truncated: pdf.truncated, pages: pdf.pages };
  }
  const decoded = decodeUtf8Text(bytes, maxChars, label);
  return { text: decoded.text, format, truncated: decoded.truncated };
}
