/**
 * Text extraction: text, Markdown, code and data decoded as UTF-8 (BOM
 * dropped, CRLF made LF), binary refused, output cut at maxChars; a real PDF
 * (written by hand) read page by page; damaged PDFs and other types refused
 * with errors that say why.
 */
import { describe, expect, it } from 'vitest';
import { extractText, mimeTypeFor } from '../../../src/files/processing/text-extraction.js';
import { refusal } from '../../support/object-bodies.js';
import { makePdf } from './make-pdf.js';

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

function withBom(text: string): Buffer {
  return Buffer.concat([BOM, Buffer.from(text, 'utf8')]);
}

describe('extractText on text files', () => {
  it('reads plain text without its BOM, with LF line ends', async () => {
    const result = await extractText({ bytes: withBom('first line\r\nsecond — ünïcödé\r\n'), mimeType: 'text/plain', name: 'notes.txt', maxChars: 1000 });
    expect(result).toEqual({ text: 'first line\nsecond — ünïcödé\n', format: 'text', truncated: false });
  });

  it('reads Markdown as markdown, whatever the client declared', async () => {
    const bytes = withBom('# Title\r\n\r\n- item\r\n');
    for (const mimeType of ['text/markdown', 'text/plain', 'application/octet-stream', undefined]) {
      expect(await extractText({ bytes, mimeType, name: 'README.md', maxChars: 1000 })).toEqual({ text: '# Title\n\n- item\n', format: 'markdown', truncated: false });
    }
  });

  it('reads TypeScript as code, even when labelled as an MPEG stream', async () => {
    const source = 'export const answer: number = 42;\r\n';
    for (const mimeType of ['video/mp2t', 'application/octet-stream', 'text/plain', undefined]) {
      const result = await extractText({ bytes: withBom(source), mimeType, name: 'src/answer.ts', maxChars: 1000 });
      expect(result).toEqual({ text: 'export const answer: number = 42;\n', format: 'code', truncated: false });
    }
    expect((await extractText({ bytes: Buffer.from('print(1)\n'), mimeType: 'text/x-python', name: 'a.py', maxChars: 100 })).format).toBe('code');
  });

  it('reads JSON, YAML and CSV as text', async () => {
    const json = await extractText({ bytes: withBom('{\r\n  "name": "exai"\r\n}\r\n'), mimeType: 'application/json; charset=utf-8', name: 'package.json', maxChars: 1000 });
    expect(json).toEqual({ text: '{\n  "name": "exai"\n}\n', format: 'text', truncated: false });
    expect(JSON.parse(json.text)).toEqual({ name: 'exai' });
    expect((await extractText({ bytes: Buffer.from('a: 1\n'), name: 'config.yml', maxChars: 100 })).format).toBe('text');
    expect((await extractText({ bytes: Buffer.from('a,b\r\n1,2\r\n'), mimeType: 'text/csv', name: 'table.csv', maxChars: 100 })).text).toBe('a,b\n1,2\n');
  });

  it('cuts text at maxChars, never inside a surrogate pair', async () => {
    const long = await extractText({ bytes: Buffer.from('abcdefghij'.repeat(100)), name: 'long.txt', maxChars: 25 });
    expect(long).toEqual({ text: 'abcdefghijabcdefghijabcde', format: 'text', truncated: true });

    const emoji = await extractText({ bytes: Buffer.from('ab😀cd'), name: 'emoji.txt', maxChars: 3 });
    expect(emoji).toEqual({ text: 'ab', format: 'text', truncated: true });

    const exact = await extractText({ bytes: Buffer.from('a\r\nb\r\n'), name: 'exact.txt', maxChars: 4 });
    expect(exact).toEqual({ text: 'a\nb\n', format: 'text', truncated: false });
  });

  it('reads only the start of a huge file it will cut anyway', async () => {
    // 64 MB of text whose tail is binary: it is never decoded, so never refused.
    const huge = Buffer.concat([Buffer.alloc(32 * 1024 * 1024, 'x'), Buffer.alloc(32 * 1024 * 1024, 0)]);
    const started = performance.now();
    const result = await extractText({ bytes: huge, name: 'huge.log', maxChars: 1000 });
    expect(result.text).toBe('x'.repeat(1000));
    expect(result.truncated).toBe(true);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('refuses binary content, naming the file', async () => {
    const binary = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d]);
    const error = await refusal(extractText({ bytes: binary, mimeType: 'text/plain', name: 'photo.txt', maxChars: 1000 }), 'unsupported_media_type');
    expect(error.message).toContain('"photo.txt"');
    expect(error.message).toContain('binary');

    // No NUL bytes, but mostly invalid UTF-8 (Latin-1 bytes ≥ 0x80).
    const latin1 = Buffer.from('Ç'.repeat(200), 'latin1');
    const invalid = await refusal(extractText({ bytes: latin1, name: 'legacy.csv', maxChars: 1000 }), 'unsupported_media_type');
    expect(invalid.message).toContain('not UTF-8');
  });

  it('tolerates a stray invalid byte in long text, and U+FFFD written in the file', async () => {
    const text = Buffer.concat([Buffer.from('a'.repeat(500)), Buffer.from([0xff]), Buffer.from('b'.repeat(500))]);
    const result = await extractText({ bytes: text, name: 'mostly.txt', maxChars: 2000 });
    expect(result.text).toBe(`${'a'.repeat(500)}\uFFFD${'b'.repeat(500)}`);

    const replacement = await extractText({ bytes: Buffer.from('\uFFFD\uFFFD\uFFFD'), name: 'replacement.txt', maxChars: 10 });
    expect(replacement.text).toBe('\uFFFD\uFFFD\uFFFD');
  });

  it('refuses types it cannot read, saying what it can', async () => {
    const error = await refusal(extractText({ bytes: Buffer.from('PK\u0003\u0004'), mimeType: 'application/zip', name: 'src.zip', maxChars: 100 }), 'unsupported_media_type');
    expect(error.message).toContain('application/zip');
    expect(error.message).toContain('Markdown');
    expect(error.message).toContain('PDF');
    await refusal(extractText({ bytes: Buffer.from('x'), name: 'mystery.bin', maxChars: 100 }), 'unsupported_media_type');
  });

  it('rejects a maxChars that is not a positive whole number', async () => {
    await refusal(extractText({ bytes: Buffer.from('x'), name: 'a.txt', maxChars: 0 }), 'invalid_argument');
    await refusal(extractText({ bytes: Buffer.from('x'), name: 'a.txt', maxChars: 1.5 }), 'invalid_argument');
  });
});

describe('extractText on PDFs', () => {
  it('writes a PDF whose xref offsets point at its objects', () => {
    const pdf = makePdf(['Hello exai PDF']).toString('latin1');
    const startxref = Number(/startxref\n(\d+)/.exec(pdf)![1]);
    expect(pdf.startsWith('xref', startxref)).toBe(true);
    const offsets = [...pdf.slice(startxref).matchAll(/^(\d{10}) 00000 n $/gm)].map((match) => Number(match[1]));
    expect(offsets).toHaveLength(5);
    offsets.forEach((offset, index) => expect(pdf.startsWith(`${index + 1} 0 obj`, offset)).toBe(true));
  });

  it('reads the text and page count of a real PDF', async () => {
    const result = await extractText({ bytes: makePdf(['Hello exai PDF']), mimeType: 'application/pdf', name: 'hello.pdf', maxChars: 10_000 });
    expect(result).toEqual({ text: 'Hello exai PDF', format: 'pdf', truncated: false, pages: 1 });
  });

  it('reads pages in order, separated by a blank line, and stops at maxChars', async () => {
    const bytes = makePdf(['Page one (first)', 'Page two', 'Page three']);
    const whole = await extractText({ bytes, name: 'three.pdf', maxChars: 10_000 });
    expect(whole).toEqual({ text: 'Page one (first)\n\nPage two\n\nPage three', format: 'pdf', truncated: false, pages: 3 });

    const cut = await extractText({ bytes, name: 'three.pdf', maxChars: 20 });
    expect(cut).toEqual({ text: 'Page one (first)\n\nPa', format: 'pdf', truncated: true, pages: 3 });
    // The caller's buffer is left intact for another read.
    expect((await extractText({ bytes, name: 'three.pdf', maxChars: 10_000 })).pages).toBe(3);
  });

  it('refuses a damaged PDF with a clear error', async () => {
    const corrupt = Buffer.from('%PDF-1.7\nthis is not really a PDF at all\n%%EOF\n', 'latin1');
    const error = await refusal(extractText({ bytes: corrupt, mimeType: 'application/pdf', name: 'broken.pdf', maxChars: 1000 }), 'invalid_argument');
    expect(error.message).toContain('"broken.pdf" is not a readable PDF');

    await refusal(extractText({ bytes: Buffer.alloc(0), name: 'empty.pdf', maxChars: 1000 }), 'invalid_argument');
  });
});

describe('mimeTypeFor', () => {
  it('knows common types by extension, in any case', () => {
    expect(mimeTypeFor('notes.TXT')).toBe('text/plain');
    expect(mimeTypeFor('README.md')).toBe('text/markdown');
    expect(mimeTypeFor('src/app.ts')).toBe('text/typescript');
    expect(mimeTypeFor('main.py')).toBe('text/x-python');
    expect(mimeTypeFor('data.json')).toBe('application/json');
    expect(mimeTypeFor('ci.yaml')).toBe('application/yaml');
    expect(mimeTypeFor('table.csv')).toBe('text/csv');
    expect(mimeTypeFor('paper.pdf')).toBe('application/pdf');
    expect(mimeTypeFor('photo.JPG')).toBe('image/jpeg');
    expect(mimeTypeFor('Dockerfile')).toBe('text/x-dockerfile');
  });

  it('falls back to application/octet-stream', () => {
    expect(mimeTypeFor('archive.unknownext')).toBe('application/octet-stream');
    expect(mimeTypeFor('no-extension')).toBe('application/octet-stream');
    expect(mimeTypeFor('.bashrc')).toBe('application/octet-stream');
    expect(mimeTypeFor('blob', 'application/octet-stream')).toBe('application/octet-stream');
  });

  it('keeps a specific declared type, bare and lower case', () => {
    expect(mimeTypeFor('upload', 'Image/PNG')).toBe('image/png');
    expect(mimeTypeFor('page.html', 'text/html; charset=UTF-8')).toBe('text/html');
    expect(mimeTypeFor('photo.png', 'image/webp')).toBe('image/webp');
  });

  it('lets the name refine uninformative or well-known wrong declarations', () => {
    expect(mimeTypeFor('report.pdf', 'application/octet-stream')).toBe('application/pdf');
    expect(mimeTypeFor('main.go', 'text/plain')).toBe('text/x-go');
    expect(mimeTypeFor('data.json', 'text/plain')).toBe('application/json');
    expect(mimeTypeFor('photo.png', 'text/plain')).toBe('text/plain');
    expect(mimeTypeFor('index.ts', 'video/mp2t')).toBe('text/typescript');
    expect(mimeTypeFor('clip.m2ts', 'video/mp2t')).toBe('video/mp2t');
  });
});
