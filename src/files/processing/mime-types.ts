/**
 * A file's MIME type from its name, for the types users send most. A small
 * table rather than mime-db: mime-db maps .ts to video/mp2t and knows no
 * types for most source code, which is what exai is sent most.
 */
import path from 'node:path';

export const OCTET_STREAM = 'application/octet-stream';

const byExtension: Record<string, string> = {
  // Plain text and prose
  txt: 'text/plain',
  text: 'text/plain',
  log: 'text/plain',
  md: 'text/markdown',
  markdown: 'text/markdown',
  mdx: 'text/markdown',
  rst: 'text/x-rst',
  adoc: 'text/asciidoc',
  tex: 'application/x-tex',
  // Data
  json: 'application/json',
  jsonl: 'application/x-ndjson',
  ndjson: 'application/x-ndjson',
  yaml: 'application/yaml',
  yml: 'application/yaml',
  toml: 'application/toml',
  csv: 'text/csv',
  tsv: 'text/tab-separated-values',
  xml: 'application/xml',
  ini: 'text/plain',
  cfg: 'text/plain',
  conf: 'text/plain',
  env: 'text/plain',
  // Source code
  html: 'text/html',
  htm: 'text/html',
  css: 'text/css',
  scss: 'text/x-scss',
  js: 'text/javascript',
  mjs: 'text/javascript',
  cjs: 'text/javascript',
  jsx: 'text/jsx',
  ts: 'text/typescript',
  mts: 'text/typescript',
  cts: 'text/typescript',
  tsx: 'text/tsx',
  vue: 'text/x-vue',
  svelte: 'text/x-svelte',
  py: 'text/x-python',
  pyi: 'text/x-python',
  ipynb: 'application/x-ipynb+json',
  rb: 'text/x-ruby',
  go: 'text/x-go',
  rs: 'text/x-rust',
  java: 'text/x-java',
  kt: 'text/x-kotlin',
  kts: 'text/x-kotlin',
  scala: 'text/x-scala',
  swift: 'text/x-swift',
  c: 'text/x-c',
  h: 'text/x-c',
  cc: 'text/x-c++',
  cpp: 'text/x-c++',
  cxx: 'text/x-c++',
  hpp: 'text/x-c++',
  hh: 'text/x-c++',
  cs: 'text/x-csharp',
  php: 'text/x-php',
  lua: 'text/x-lua',
  pl: 'text/x-perl',
  r: 'text/x-r',
  dart: 'text/x-dart',
  ex: 'text/x-elixir',
  exs: 'text/x-elixir',
  erl: 'text/x-erlang',
  hs: 'text/x-haskell',
  clj: 'text/x-clojure',
  sh: 'text/x-shellscript',
  bash: 'text/x-shellscript',
  zsh: 'text/x-shellscript',
  ps1: 'text/x-powershell',
  sql: 'application/sql',
  graphql: 'application/graphql',
  gql: 'application/graphql',
  proto: 'text/x-protobuf',
  tf: 'text/x-terraform',
  diff: 'text/x-diff',
  patch: 'text/x-diff',
  // Documents, images, archives: stored as they are
  pdf: 'application/pdf',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  avif: 'image/avif',
  heic: 'image/heic',
  tif: 'image/tiff',
  tiff: 'image/tiff',
  bmp: 'image/bmp',
  ico: 'image/vnd.microsoft.icon',
  svg: 'image/svg+xml',
  zip: 'application/zip',
  gz: 'application/gzip',
  tgz: 'application/gzip',
  tar: 'application/x-tar',
  '7z': 'application/x-7z-compressed',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  mp3: 'audio/mpeg',
  wav: 'audio/wav',
  mp4: 'video/mp4',
  webm: 'video/webm',
};

/** Files known by their whole name, which have no extension. */
const byFileName: Record<string, string> = {
  dockerfile: 'text/x-dockerfile',
  makefile: 'text/x-makefile',
  license: 'text/plain',
  readme: 'text/plain',
};

/** Declared types that say nothing: the name decides. */
const uninformative = new Set([OCTET_STREAM, 'binary/octet-stream', 'application/unknown', 'application/x-unknown']);

/** Types outside text/* whose content is text too. */
const textApplicationTypes = new Set([
  'application/json',
  'application/x-ndjson',
  'application/jsonl',
  'application/xml',
  'application/javascript',
  'application/x-javascript',
  'application/ecmascript',
  'application/typescript',
  'application/x-typescript',
  'application/yaml',
  'application/x-yaml',
  'application/toml',
  'application/csv',
  'application/sql',
  'application/graphql',
  'application/x-sh',
  'application/x-httpd-php',
  'application/x-tex',
]);

/** The bare type: lower case, without parameters such as charset; '' when absent. */
export function bareMimeType(mimeType: string | undefined): string {
  return (mimeType?.split(';')[0] ?? '').trim().toLowerCase();
}

/** Whether files of this type are text (prose, data or source code), whatever their top-level type. */
export function isTextMimeType(mimeType: string): boolean {
  const type = bareMimeType(mimeType);
  return type.startsWith('text/') || textApplicationTypes.has(type) || type.endsWith('+json') || type.endsWith('+xml');
}

function fromName(name: string): string | undefined {
  const base = path.basename(name).toLowerCase();
  const extension = path.extname(base).slice(1);
  return (extension === '' ? undefined : byExtension[extension]) ?? byFileName[base];
}

/**
 * The type to record for a file: the declared one when it is specific, else
 * the one its name says, else application/octet-stream. Always bare and lower case.
 */
export function mimeTypeFor(name: string, declared?: string): string {
  const stated = bareMimeType(declared);
  const named = fromName(name);
  if (stated === '' || uninformative.has(stated)) return named ?? OCTET_STREAM;
  // Clients label any text as text/plain; a known text extension is more precise.
  if (stated === 'text/plain' && named !== undefined && isTextMimeType(named)) return named;
  // Operating systems map .ts to MPEG transport streams; a .ts file sent here is TypeScript.
  if (stated === 'video/mp2t' && named === 'text/typescript') return named;
  return stated;
}
