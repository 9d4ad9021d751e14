/**
 * Bytes that should be UTF-8 text, as a string for a prompt: the BOM dropped,
 * CRLF made LF, cut at a character limit, and binary content refused rather
 * than passed on as mojibake.
 */
import { ExaiError } from '../../errors.js';

/** Invalid UTF-8 tolerated (as U+FFFD) before the bytes count as not text: a stray byte, not a Latin-1 file. */
const MAX_INVALID_RATIO = 0.01;

export interface DecodedText {
  text: string;
  truncated: boolean;
}

/**
 * Decodes at most what `maxChars` characters can need, so a huge file costs
 * no more than its prefix. `label` names the file in errors.
 */
export function decodeUtf8Text(bytes: Buffer, maxChars: number, label: string): DecodedText {
  // Each UTF-16 unit of the result takes at most 3 bytes (CRLF → LF takes 2), so this prefix always holds more than maxChars.
  const end = Math.min(bytes.length, maxChars * 4 + 4);
  const head = bytes.subarray(0, end);
  if (head.includes(0)) {
    throw new ExaiError('unsupported_media_type', `${label} contains NUL bytes: it is binary, not text.`);
  }
  // stream: a multi-byte character cut by the prefix is not counted as invalid.
  const decoded = new TextDecoder('utf-8', { ignoreBOM: false }).decode(head, { stream: end < bytes.length });
  // U+FFFD written in the file as UTF-8 is valid text; only the ones the decoder made are invalid bytes.
  const invalid = replacementsIn(decoded) - replacementBytesIn(head);
  if (invalid > Math.max(0, decoded.length * MAX_INVALID_RATIO)) {
    throw new ExaiError('unsupported_media_type', `${label} is not UTF-8 text (${invalid} invalid byte sequences); save it as UTF-8 and send it again.`);
  }
  const text = decoded.replace(/\r\n/g, '\n');
  if (text.length <= maxChars && end === bytes.length) return { text, truncated: false };
  return { text: cutAt(text, maxChars), truncated: true };
}

const replacement = '\uFFFD';
const replacementBytes = Buffer.from(replacement, 'utf8');

function replacementsIn(text: string): number {
  let count = 0;
  for (let at = text.indexOf(replacement); at !== -1; at = text.indexOf(replacement, at + 1)) count++;
  return count;
}

function replacementBytesIn(bytes: Buffer): number {
  let count = 0;
  for (let at = bytes.indexOf(replacementBytes); at !== -1; at = bytes.indexOf(replacementBytes, at + 1)) count++;
  return count;
}

/** The first `maxChars` UTF-16 units, never ending inside a surrogate pair. */
export function cutAt(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const last = text.charCodeAt(maxChars - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? maxChars - 1 : maxChars);
}
