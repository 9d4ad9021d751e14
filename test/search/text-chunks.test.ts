/** Chunking of files' text for search: every character is covered, chunks are bounded, end at natural breaks and overlap. */
import { describe, expect, it } from 'vitest';
import { chunkText } from '../../src/search/text-chunks.js';

describe('chunkText', () => {
  it('covers the whole text in bounded, overlapping chunks that end at paragraph breaks when they can', () => {
    const paragraphs = Array.from({ length: 40 }, (_, index) => `Paragraph ${index} says something about topic ${index % 5}. `.repeat(3).trim());
    const text = paragraphs.join('\n\n');
    const chunks = chunkText(text, { size: 500, overlap: 80 });
    expect(chunks.length).toBeGreaterThan(text.length / 500);
    for (const chunk of chunks) {
      expect(chunk.content.length).toBeLessThanOrEqual(500);
      expect(text.slice(chunk.start)).toContain(chunk.content);
    }
    // Every chunk but the last ends where a paragraph ends.
    for (const chunk of chunks.slice(0, -1)) expect(text.slice(chunk.start + chunk.content.length, chunk.start + chunk.content.length + 2)).toBe('\n\n');
    // Consecutive chunks overlap (or touch), so nothing falls between them.
    for (let index = 1; index < chunks.length; index += 1) {
      const previous = chunks[index - 1]!;
      expect(chunks[index]!.start).toBeLessThanOrEqual(previous.start + previous.content.length);
      expect(chunks[index]!.start).toBeGreaterThan(previous.start);
    }
    expect(text.endsWith(chunks[chunks.length - 1]!.content)).toBe(true);
  });

  it('cuts text without breaks at the size, never inside a surrogate pair, and skips blank stretches', () => {
    const emoji = '🚀'.repeat(400);
    const chunks = chunkText(emoji, { size: 101, overlap: 10 });
    for (const chunk of chunks) {
      expect(chunk.content.length).toBeLessThanOrEqual(101);
      expect(chunk.content).toMatch(/^(🚀)+$/u);
    }
    expect(chunks.map((chunk) => chunk.content).join('').length).toBeGreaterThanOrEqual(emoji.length);
    expect(chunkText('   \n\n   ')).toEqual([]);
    expect(chunkText('short')).toEqual([{ start: 0, content: 'short' }]);
  });

  it('refuses sizes it cannot work with', () => {
    expect(() => chunkText('x', { size: 10 })).toThrow(/size must be a whole number ≥ 20/);
    expect(() => chunkText('x', { size: 100, overlap: 60 })).toThrow(/overlap less than half/);
  });
});
