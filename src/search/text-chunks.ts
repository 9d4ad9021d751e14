/**
 * Cuts a file's extracted text into overlapping chunks for search: each about
 * `size` characters, ending where the text breaks most naturally (a blank
 * line, then a line end, a sentence end, a space), and the next one starting
 * `overlap` characters earlier, so a passage cut at a boundary is still whole
 * in one of the two.
 */
export interface TextChunk {
  /** Where the chunk starts in the text, in UTF-16 code units. */
  start: number;
  content: string;
}

export interface ChunkOptions {
  size?: number;
  overlap?: number;
}

const breaks = ['\n\n', '\n', '. ', '? ', '! ', '; ', ' '];

/** Where to end a chunk that starts at `start`: the latest natural break in its last 40%. */
function chunkEnd(text: string, start: number, size: number): number {
  const hardEnd = start + size;
  if (hardEnd >= text.length) return text.length;
  const earliest = start + Math.floor(size * 0.6);
  // Only the window is searched: lastIndexOf on the whole text would scan back to its start for a
  // break the text lacks (CJK has no spaces), making long texts quadratic.
  const window = text.slice(earliest, hardEnd);
  for (const mark of breaks) {
    const at = window.lastIndexOf(mark);
    if (at !== -1) return earliest + at + mark.length;
  }
  // No break at all (a long token): cut, but never between the halves of a surrogate pair.
  const code = text.charCodeAt(hardEnd - 1);
  return code >= 0xd800 && code <= 0xdbff ? hardEnd - 1 : hardEnd;
}

export function chunkText(text: string, options: ChunkOptions = {}): TextChunk[] {
  const size = options.size ?? 1_000;
  const overlap = options.overlap ?? 150;
  if (!(Number.isInteger(size) && size >= 20) || !(Number.isInteger(overlap) && overlap >= 0 && overlap < size / 2)) {
    throw new RangeError(`chunk size ${size} and overlap ${overlap}: the size must be a whole number ≥ 20 and the overlap less than half of it.`);
  }
  const chunks: TextChunk[] = [];
  let start = 0;
  while (start < text.length) {
    const end = chunkEnd(text, start, size);
    const content = text.slice(start, end).trim();
    if (content !== '') chunks.push({ start, content });
    if (end >= text.length) break;
    // Step back by the overlap, to the start of a word, but always forward from this chunk's start.
    let next = Math.max(end - overlap, start + 1);
    const space = text.indexOf(' ', next);
    if (space !== -1 && space < end) next = space + 1;
    const code = text.charCodeAt(next);
    if (code >= 0xdc00 && code <= 0xdfff) next += 1;
    start = next;
  }
  return chunks;
}
