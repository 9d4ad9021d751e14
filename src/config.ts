/**
 * Every setting of exai in one typed, validated place.
 *
 * Values come from the environment, then from an optional `.env` file (the
 * environment wins), and secrets may instead be read from a file named by the
 * `<NAME>_FILE` variant. A bad value stops start-up with a message that names
 * the variable, says what was wrong and gives an example of a good value.
 */
import { alertRulesFromText, type AlertRule } from './metrics/alert-rules.js';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { z } from 'zod';
import { ExaiError } from './errors.js';
import { toolNames } from './tools/names.js';
import { allScopes, splitScopes, type Scope } from './auth/scopes.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface ProviderSettings {
  apiKey: string | undefined;
  baseUrl: string;
}

export interface Config {
  /** Folder for embedded state: the PGlite database, owner lock, local files. */
  home: string;
  database: {
    /** Unset means embedded PGlite under `home`. */
    url: string | undefined;
    poolMax: number;
    connectTimeoutMs: number;
    /** A statement without an answer for this long fails (a silent network drop must not hang calls). */
    queryTimeoutMs: number;
  };
  redis: {
    /** Unset means the in-process cache. */
    url: string | undefined;
    commandTimeoutMs: number;
    /** Start of every key exai writes, so deployments can share one Redis: `<prefix>:` (cache), `<prefix>-rl:` (limits). */
    keyPrefix: string;
  };
  http: {
    host: string;
    port: number;
    /** Proxies whose X-Forwarded-For is believed (client addresses count failed logins): false, hops, or addresses/CIDRs. */
    trustProxy: false | number | string[];
  };
  cache: { ttlMs: number; maxEntries: number; maxBytes: number };
  limits: { maxMessageBytes: number; maxThreadDepth: number };
  files: {
    /** Real (symlink-free) folders under which tools may read the files they are given. */
    allowedRoots: string[];
    /** Whether EXAI_ALLOWED_ROOTS was set: callers over the network read files only then. */
    rootsExplicit: boolean;
    /** EXAI_HOME and the .env file: never read by a tool, even under an allowed root. */
    protectedPaths: string[];
    /** Largest single file a tool embeds in a prompt. */
    maxFileBytes: number;
    /** Most bytes of files one tool call embeds in total. */
    maxTotalBytes: number;
    /** Largest image a tool call sends to a vision model. */
    maxImageBytes: number;
  };
  storage: {
    /** Where uploaded files' bytes live: a folder (the default, under `home`) or an S3-compatible bucket. */
    primary: { kind: 'file'; directory: string } | { kind: 's3'; bucket: string; endpoint: string | undefined; region: string; accessKeyId: string | undefined; secretAccessKey: string | undefined; forcePathStyle: boolean | undefined };
    /** This instance's local cache of primary objects; 0 bytes turns it off. */
    cacheDirectory: string;
    cacheBytes: number;
    /** Small hot files kept in memory. */
    memoryBytes: number;
    memoryMaxFileBytes: number;
    /** Secret that signs download URLs; when unset, one is made once and kept in the database. */
    urlSigningSecret: string | undefined;
    /** How long a signed download URL works unless the caller asks for less. */
    signedUrlTtlMs: number;
  };
  search: {
    /** An embedding model of a provider; undefined means the built-in lexical embedder. */
    embedding:
      | { provider: 'glm' | 'openai-compat'; model: string; dimensions: number }
      | undefined;
  };
  tools: {
    /** The tools offered; undefined means all of them. */
    enabled: string[] | undefined;
    disabled: string[];
  };
  auth: {
    /** `required`: HTTP needs an API key or token. `local`: every HTTP request is the local user (loopback only). */
    mode: 'required' | 'local';
    jwtSecret: string | undefined;
    jwksUrl: string | undefined;
    jwtIssuer: string | undefined;
    jwtAudience: string | undefined;
    /** Scopes of a token that carries no `scope` claim (Supabase access tokens carry none). */
    jwtDefaultScopes: Scope[];
    /** Public base URL of this server, for the protected-resource metadata; else taken from the request. */
    publicUrl: string | undefined;
    /** How long a rotated key keeps working. */
    rotationGraceMs: number;
    /** Failed authentications per client address per minute before it is locked out for the rest of the minute. */
    failuresPerMinute: number;
  };
  /** Default limits per key (or per user, for tokens and local use); 0 means unlimited. */
  rateLimits: { requestsPerMinute: number; tokensPerMinute: number; concurrentCalls: number };
  metrics: {
    /** Alert rules the alerts job evaluates every minute (EXAI_ALERT_RULES). */
    alertRules: AlertRule[];
  };
  logLevel: LogLevel;
  /** Handle of the user that stdio and local mode act as. */
  localUser: string;
  providers: {
    /** Whole-call limit of one model call, retries included. */
    timeoutMs: number;
    /** Calls in flight per provider; more wait their turn. */
    maxConcurrent: number;
    kimi: ProviderSettings;
    glm: ProviderSettings;
    openaiCompat: { apiKey: string | undefined; baseUrl: string | undefined; models: string[] };
  };
}

/** Variables whose values are secrets: never echoed, and readable from `<NAME>_FILE`. */
const secretVariables = new Set([
  'DATABASE_URL',
  'REDIS_URL',
  'KIMI_API_KEY',
  'GLM_API_KEY',
  'OPENAI_COMPAT_API_KEY',
  'EXAI_JWT_SECRET',
  'EXAI_S3_SECRET_ACCESS_KEY',
  'EXAI_URL_SIGNING_SECRET',
]);

const durationPattern = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i;
const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `24h`, `90s`, `500ms`, `7d`, or a bare number of seconds, into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const match = durationPattern.exec(text.trim());
  if (!match) return undefined;
  const unit = (match[2] ?? 's').toLowerCase();
  return Math.round(Number(match[1]) * (durationUnits[unit] ?? 1000));
}

const sizePattern = /^(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?$/i;
const sizeUnits: Record<string, number> = {
  b: 1,
  kb: 1000,
  kib: 1024,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/** Parses `1MiB`, `512kb`, or a bare number of bytes. */
export function parseSize(text: string): number | undefined {
  const match = sizePattern.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * (sizeUnits[(match[2] ?? 'b').toLowerCase()] ?? 1);
}

const duration = (min: number, max: number) =>
  z.string().transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: 'must be a duration such as 90s, 30m, 24h or 7d' });
      return z.NEVER;
    }
    if (ms < min || ms > max) {
      ctx.addIssue({ code: 'custom', message: `must be between ${min} ms and ${max} ms` });
      return z.NEVER;
    }
    return ms;
  });

const size = (min: number, max: number) =>
  z.string().transform((text, ctx) => {
    const bytes = parseSize(text);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: 'must be a size such as 1048576, 512KiB or 1MiB' });
      return z.NEVER;
    }
    if (bytes < min || bytes > max) {
      ctx.addIssue({ code: 'custom', message: `must be between ${min} and ${max} bytes` });
      return z.NEVER;
    }
    return bytes;
  });

const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const urlWithSchemes = (schemes: string[]) =>
  z.string().refine(
    (text) => {
      try {
        const url = new URL(text);
        return schemes.includes(url.protocol) && url.hostname !== '';
      } catch {
        return false;
      }
    },
    { message: `must be a URL starting with ${schemes.map((s) => `${s}//`).join(' or ')} and naming a host` },
  );

const httpUrl = urlWithSchemes(['http:', 'https:']);

/** Addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  return /^(127\.\d+\.\d+\.\d+|::1|\[::1\]|localhost)$/i.test(host);
}

function isFolder(entry: string): boolean {
  try {
    return statSync(entry).isDirectory();
  } catch {
    return false;
  }
}

/** Comma-separated absolute folders. */
const pathList = z
  .string()
  .transform((text) => text.split(',').map((entry) => entry.trim()).filter((entry) => entry !== ''))
  .pipe(
    z
      .array(
        z
          .string()
          .refine((entry) => path.isAbsolute(entry), { message: 'every entry must be an absolute path' })
          .refine((entry) => !path.isAbsolute(entry) || isFolder(entry), { message: 'every entry must be an existing folder' }),
      )
      .min(1, 'must list at least one absolute folder'),
  );

/** `file:///absolute/folder` or `s3://bucket`. */
const storageUrl = z.string().transform((text, ctx) => {
  const bad = () => {
    ctx.addIssue({ code: 'custom', message: 'must be file:///absolute/folder or s3://bucket-name' });
    return z.NEVER;
  };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return bad();
  }
  if (url.protocol === 'file:' && url.hostname === '' && url.pathname.length > 1) return { kind: 'file' as const, directory: path.resolve(decodeURIComponent(url.pathname)) };
  // Bucket names as S3 allows them: 3-63 lowercase letters, digits, dots and hyphens.
  if (url.protocol === 's3:' && /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(url.hostname) && (url.pathname === '' || url.pathname === '/')) {
    return { kind: 's3' as const, bucket: url.hostname };
  }
  return bad();
});

const yesNo = z.string().transform((text, ctx) => {
  const value = text.trim().toLowerCase();
  if (['true', 'yes', '1'].includes(value)) return true;
  if (['false', 'no', '0'].includes(value)) return false;
  ctx.addIssue({ code: 'custom', message: 'must be true or false' });
  return z.NEVER;
});

/** Comma-separated tool names, each one exai offers. */
const toolList = z
  .string()
  .transform((text) => text.split(',').map((entry) => entry.trim().toLowerCase()).filter((entry) => entry !== ''))
  .pipe(
    z.array(z.string()).superRefine((names, ctx) => {
      const unknown = names.filter((name) => !(toolNames as readonly string[]).includes(name));
      if (unknown.length > 0) ctx.addIssue({ code: 'custom', message: `unknown tool ${unknown.join(', ')}; the tools are ${toolNames.join(', ')}` });
    }),
  );

/** Comma- or space-separated scopes. */
const scopeList = z.string().transform((text, ctx) => {
  const { names, unknown } = splitScopes(text);
  if (unknown.length > 0) {
    ctx.addIssue({ code: 'custom', message: `unknown scope ${unknown.join(', ')}; the scopes are ${allScopes.join(', ')}` });
    return z.NEVER;
  }
  return names as Scope[];
});

interface VariableSpec<T> {
  schema: z.ZodType<T, string>;
  example: string;
  default?: string;
}

function spec<T>(schema: z.ZodType<T, string>, example: string, defaultValue?: string): VariableSpec<T> {
  return defaultValue === undefined ? { schema, example } : { schema, example, default: defaultValue };
}

const specs = {
  EXAI_HOME: spec(z.string().min(1, 'must not be empty'), './.exai', './.exai'),
  DATABASE_URL: spec(
    urlWithSchemes(['postgres:', 'postgresql:']),
    'postgresql://postgres:secret@db.example.com:5432/postgres',
  ),
  DATABASE_POOL_MAX: spec(integer(1, 1000), '10', '10'),
  DATABASE_CONNECT_TIMEOUT: spec(duration(100, 600_000), '5s', '5s'),
  DATABASE_QUERY_TIMEOUT: spec(duration(100, 3_600_000), '30s', '30s'),
  REDIS_URL: spec(urlWithSchemes(['redis:', 'rediss:']), 'redis://127.0.0.1:6379/0'),
  EXAI_REDIS_PREFIX: spec(z.string().regex(/^[A-Za-z0-9_.-]{1,50}$/, 'must be 1-50 letters, digits, . _ or -'), 'exai-staging', 'exai'),
  REDIS_COMMAND_TIMEOUT: spec(duration(10, 60_000), '500ms', '500ms'),
  EXAI_HOST: spec(z.string().min(1, 'must not be empty'), '127.0.0.1', '127.0.0.1'),
  EXAI_PORT: spec(integer(0, 65535), '8079', '8079'),
  EXAI_TRUST_PROXY: spec(
    z.string().transform((text, ctx) => {
      const value = text.trim().toLowerCase();
      if (value === 'false' || value === 'no' || value === '0') return false;
      // Not `true`: trusting every hop would let any client choose the address its failures count against.
      if (/^\d+$/.test(value) && Number(value) <= 10) return Number(value);
      const entries = value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
      const isNetwork = (entry: string) => {
        const [address = '', bits] = entry.split('/');
        const family = isIP(address);
        return family !== 0 && (bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128)));
      };
      if (entries.length > 0 && entries.every(isNetwork)) return entries;
      ctx.addIssue({ code: 'custom', message: 'must be false, a number of proxy hops (1-10), or comma-separated proxy addresses/CIDRs' });
      return z.NEVER;
    }),
    '10.0.0.0/8,127.0.0.1',
    'false',
  ),
  EXAI_CACHE_TTL: spec(duration(1000, 365 * 86_400_000), '24h', '24h'),
  EXAI_CACHE_MAX_ENTRIES: spec(integer(1, 10_000_000), '10000', '10000'),
  EXAI_CACHE_MAX_BYTES: spec(size(1024, 64 * 1024 ** 3), '64MiB', '64MiB'),
  EXAI_MAX_MESSAGE_BYTES: spec(size(1024, 256 * 1024 ** 2), '1MiB', '1MiB'),
  EXAI_THREAD_MAX_DEPTH: spec(integer(1, 1000), '20', '20'),
  EXAI_LOG_LEVEL: spec(
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      message: 'must be one of fatal, error, warn, info, debug, trace, silent',
    }),
    'info',
    'info',
  ),
  EXAI_USER: spec(
    z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'must be a lower-case handle (letters, digits, . _ -)'),
    'local',
    'local',
  ),
  EXAI_AUTH: spec(
    z.enum(['required', 'local'], { message: 'must be required (API keys or tokens) or local (single user, loopback only)' }),
    'required',
    'required',
  ),
  EXAI_JWT_SECRET: spec(z.string().min(32, 'must be at least 32 characters (an HS256 secret, such as Supabase\'s JWT secret)'), 'a-long-random-string-of-32-or-more-characters'),
  EXAI_JWKS_URL: spec(httpUrl, 'https://your-project.supabase.co/auth/v1/.well-known/jwks.json'),
  EXAI_JWT_ISSUER: spec(z.string().min(1, 'must not be empty'), 'https://your-project.supabase.co/auth/v1'),
  EXAI_JWT_AUDIENCE: spec(z.string().min(1, 'must not be empty'), 'authenticated'),
  EXAI_JWT_DEFAULT_SCOPES: spec(scopeList, 'tools:call,conversations:read', 'tools:call,conversations:read,conversations:write,files:write,metrics:read'),
  EXAI_PUBLIC_URL: spec(httpUrl, 'https://exai.example.com'),
  EXAI_KEY_ROTATION_GRACE: spec(duration(0, 365 * 86_400_000), '24h', '24h'),
  EXAI_AUTH_FAILURES_PER_MINUTE: spec(integer(1, 100_000), '10', '10'),
  EXAI_RATE_REQUESTS_PER_MINUTE: spec(integer(0, 1_000_000), '120', '120'),
  EXAI_RATE_TOKENS_PER_MINUTE: spec(integer(0, 1_000_000_000), '500000', '1000000'),
  EXAI_RATE_CONCURRENT_CALLS: spec(integer(0, 10_000), '4', '8'),
  EXAI_ALLOWED_ROOTS: spec(pathList, '/home/me/src,/srv/repos'),
  EXAI_MAX_FILE_BYTES: spec(size(1, 64 * 1024 ** 2), '512KiB', '512KiB'),
  EXAI_MAX_FILES_BYTES: spec(size(1, 256 * 1024 ** 2), '2MiB', '2MiB'),
  EXAI_MAX_IMAGE_BYTES: spec(size(1, 64 * 1024 ** 2), '5MiB', '5MiB'),
  EXAI_STORAGE_URL: spec(storageUrl, 's3://exai-files'),
  EXAI_S3_ENDPOINT: spec(httpUrl, 'https://your-project.supabase.co/storage/v1/s3'),
  EXAI_S3_REGION: spec(z.string().regex(/^[a-z0-9-]{1,50}$/, 'must be a region name such as us-east-1'), 'us-east-1', 'us-east-1'),
  EXAI_S3_ACCESS_KEY_ID: spec(z.string().min(1, 'must not be empty'), 'AKIA…'),
  EXAI_S3_SECRET_ACCESS_KEY: spec(z.string().min(1, 'must not be empty'), 'your-secret-access-key'),
  EXAI_S3_FORCE_PATH_STYLE: spec(yesNo, 'true'),
  EXAI_FILE_CACHE_DIR: spec(z.string().min(1, 'must not be empty'), '/var/cache/exai'),
  EXAI_FILE_CACHE_BYTES: spec(size(0, 1024 ** 4), '1GiB', '1GiB'),
  EXAI_FILE_MEMORY_BYTES: spec(size(0, 64 * 1024 ** 3), '64MiB', '64MiB'),
  EXAI_FILE_MEMORY_MAX_FILE: spec(size(0, 1024 ** 3), '1MiB', '1MiB'),
  EXAI_URL_SIGNING_SECRET: spec(z.string().min(32, 'must be at least 32 characters'), 'a-long-random-string-of-32-or-more-characters'),
  EXAI_SIGNED_URL_TTL: spec(duration(1000, 7 * 86_400_000), '15m', '15m'),
  EXAI_EMBEDDING_MODEL: spec(z.string().regex(/^[A-Za-z0-9._:/-]{1,200}$/, 'must be a model name (letters, digits, . _ : / -)'), 'embedding-3'),
  EXAI_EMBEDDING_PROVIDER: spec(z.enum(['glm', 'openai-compat'], { message: 'must be glm or openai-compat' }), 'glm'),
  EXAI_EMBEDDING_DIMENSIONS: spec(integer(1, 2000), '1024', '1024'),
  EXAI_TOOLS: spec(toolList, 'chat,thinkdeep,codereview,listmodels'),
  EXAI_DISABLED_TOOLS: spec(toolList, 'precommit,docgen'),
  EXAI_PROVIDER_TIMEOUT: spec(duration(1000, 3_600_000), '5m', '5m'),
  EXAI_PROVIDER_CONCURRENCY: spec(integer(1, 1000), '4', '4'),
  KIMI_API_KEY: spec(z.string().min(1, 'must not be empty'), 'sk-...'),
  KIMI_BASE_URL: spec(httpUrl, 'https://api.moonshot.ai/v1', 'https://api.moonshot.ai/v1'),
  GLM_API_KEY: spec(z.string().min(1, 'must not be empty'), 'your-z.ai-key'),
  GLM_BASE_URL: spec(httpUrl, 'https://api.z.ai/api/paas/v4', 'https://api.z.ai/api/paas/v4'),
  EXAI_ALERT_RULES: spec(alertRulesFromText, '[{"name":"kimi-slow","metric":"p95_ms","above":20000,"window":"15m","model":"kimi-k2-0905-preview"}]', '[]'),
  OPENAI_COMPAT_BASE_URL: spec(httpUrl, 'http://127.0.0.1:11434/v1'),
  OPENAI_COMPAT_API_KEY: spec(z.string().min(1, 'must not be empty'), 'ollama'),
  OPENAI_COMPAT_MODELS: spec(
    z
      .string()
      .transform((text) => text.split(',').map((name) => name.trim()).filter((name) => name !== ''))
      .pipe(z.array(z.string()).min(1, 'must list at least one model name')),
    'llama3.1:8b,qwen2.5-coder:7b',
  ),
} as const;

type Specs = typeof specs;
type Parsed = { [K in keyof Specs]: Specs[K] extends VariableSpec<infer T> ? T : never };

export interface LoadConfigOptions {
  /** Folder against which relative paths (EXAI_HOME, the .env file) resolve. */
  cwd?: string;
  /** Path of the .env file; defaults to `EXAI_ENV_FILE` or `<cwd>/.env` when present. */
  envFile?: string;
}

export type Environment = Record<string, string | undefined>;

/** Reads the optional .env file; the real environment keeps precedence. */
function envFilePath(env: Environment, cwd: string, explicit: string | undefined): string {
  const named = explicit ?? env.EXAI_ENV_FILE;
  return named === undefined ? path.join(cwd, '.env') : path.resolve(cwd, named);
}

function readEnvFile(env: Environment, cwd: string, explicit: string | undefined, problems: string[]): Environment {
  const named = explicit ?? env.EXAI_ENV_FILE;
  const file = envFilePath(env, cwd, explicit);
  if (!existsSync(file)) {
    if (explicit !== undefined) problems.push(`The env file ${file} does not exist.`);
    else if (named !== undefined) problems.push(`EXAI_ENV_FILE: file ${file} does not exist. Example: EXAI_ENV_FILE=./.env`);
    return {};
  }
  try {
    return parseEnv(readFileSync(file, 'utf8'));
  } catch (error) {
    problems.push(`.env file ${file} could not be read: ${(error as Error).message}`);
    return {};
  }
}

/** Resolves `<NAME>_FILE` for secrets: the file's content, trailing newline removed. */
function resolveSecretFiles(merged: Environment, cwd: string, problems: string[]): void {
  for (const name of secretVariables) {
    const fileVariable = `${name}_FILE`;
    const file = merged[fileVariable];
    if (file === undefined || file === '') continue;
    if (merged[name] !== undefined && merged[name] !== '') {
      problems.push(`${name}: set either ${name} or ${fileVariable}, not both. Example: ${fileVariable}=/run/secrets/${name.toLowerCase()}`);
      continue;
    }
    try {
      merged[name] = readFileSync(path.resolve(cwd, file), 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      problems.push(`${fileVariable}: cannot read ${file} (${reason}). Example: ${fileVariable}=/run/secrets/${name.toLowerCase()}`);
    }
  }
}

function describeValue(name: string, raw: string): string {
  if (secretVariables.has(name)) return 'value hidden because it is a secret';
  // Credentials inside any URL-like value are never echoed either.
  if (/\/\/[^/\s]*@/.test(raw)) return 'value hidden because it carries credentials';
  const shown = raw.length > 60 ? `${raw.slice(0, 57)}...` : raw;
  return `got ${JSON.stringify(shown)}`;
}

/** Builds the configuration, or throws an ExaiError listing every bad variable. */
export function loadConfig(env: Environment = process.env, options: LoadConfigOptions = {}): Config {
  const cwd = options.cwd ?? process.cwd();
  const problems: string[] = [];
  const merged: Environment = { ...readEnvFile(env, cwd, options.envFile, problems) };
  for (const [key, value] of Object.entries(env)) if (value !== undefined) merged[key] = value;
  resolveSecretFiles(merged, cwd, problems);

  const parsed: Partial<Record<keyof Specs, unknown>> = {};
  for (const name of Object.keys(specs) as (keyof Specs)[]) {
    const variable: VariableSpec<unknown> = specs[name];
    const raw = merged[name];
    const text = raw === undefined || raw === '' ? variable.default : raw;
    if (text === undefined) continue;
    const result = variable.schema.safeParse(text);
    if (result.success) {
      parsed[name] = result.data;
    } else {
      const reason = result.error.issues.map((issue) => issue.message).join('; ');
      problems.push(`${name}: ${reason} (${describeValue(name, text)}). Example: ${name}=${variable.example}`);
    }
  }
  const host = parsed.EXAI_HOST as string | undefined;
  if (parsed.EXAI_AUTH === 'local' && host !== undefined && !isLoopbackHost(host)) {
    problems.push(
      `EXAI_AUTH: local mode (every request acts as the local user) is allowed only on a loopback address, but EXAI_HOST is ${JSON.stringify(host)}. ` +
        'Set EXAI_HOST=127.0.0.1, or keep EXAI_AUTH=required and create API keys with `exai keys create`.',
    );
  }
  if (parsed.EXAI_AUTH === 'local' && parsed.EXAI_TRUST_PROXY !== undefined && parsed.EXAI_TRUST_PROXY !== false) {
    problems.push('EXAI_AUTH: local mode cannot run behind a proxy (EXAI_TRUST_PROXY is set): every proxied request would arrive from loopback. Use EXAI_AUTH=required with API keys.');
  }
  if ((parsed.EXAI_JWT_SECRET !== undefined || parsed.EXAI_JWKS_URL !== undefined) && parsed.EXAI_JWT_AUDIENCE === undefined) {
    problems.push(
      'EXAI_JWT_AUDIENCE: must be set when JWTs are accepted, so only tokens issued for this server pass (the MCP authorization spec requires it). Example: EXAI_JWT_AUDIENCE=authenticated (Supabase), or this server\'s URL.',
    );
  }
  if ((parsed.EXAI_S3_ACCESS_KEY_ID === undefined) !== (parsed.EXAI_S3_SECRET_ACCESS_KEY === undefined)) {
    problems.push('EXAI_S3_ACCESS_KEY_ID and EXAI_S3_SECRET_ACCESS_KEY: set both or neither (neither uses the AWS SDK\'s usual credential chain).');
  }
  const s3Only = (['EXAI_S3_ENDPOINT', 'EXAI_S3_ACCESS_KEY_ID', 'EXAI_S3_FORCE_PATH_STYLE'] as const).filter((name) => parsed[name] !== undefined);
  if (s3Only.length > 0 && (parsed.EXAI_STORAGE_URL as { kind?: string } | undefined)?.kind !== 's3') {
    problems.push(`${s3Only.join(', ')}: only used with an S3 bucket; set EXAI_STORAGE_URL=s3://your-bucket as well, or remove them.`);
  }
  if (parsed.EXAI_EMBEDDING_MODEL !== undefined) {
    const provider = parsed.EXAI_EMBEDDING_PROVIDER ?? (parsed.GLM_API_KEY !== undefined ? 'glm' : parsed.OPENAI_COMPAT_BASE_URL !== undefined ? 'openai-compat' : undefined);
    if (provider === undefined) {
      problems.push('EXAI_EMBEDDING_MODEL: needs a provider to call: set GLM_API_KEY, or OPENAI_COMPAT_BASE_URL (Ollama, vLLM …), or leave EXAI_EMBEDDING_MODEL unset for the built-in lexical embedder.');
    } else if (provider === 'glm' && parsed.GLM_API_KEY === undefined) {
      problems.push('EXAI_EMBEDDING_PROVIDER: glm needs GLM_API_KEY.');
    } else if (provider === 'openai-compat' && parsed.OPENAI_COMPAT_BASE_URL === undefined) {
      problems.push('EXAI_EMBEDDING_PROVIDER: openai-compat needs OPENAI_COMPAT_BASE_URL, e.g. http://127.0.0.1:11434/v1 for Ollama.');
    }
  } else if (parsed.EXAI_EMBEDDING_PROVIDER !== undefined) {
    problems.push('EXAI_EMBEDDING_PROVIDER: only used with EXAI_EMBEDDING_MODEL; set the model too, or remove it.');
  }
  if (problems.length > 0) {
    throw new ExaiError('invalid_config', `Invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  const value = parsed as Parsed;
  return {
    home: path.resolve(cwd, value.EXAI_HOME),
    database: {
      url: value.DATABASE_URL,
      poolMax: value.DATABASE_POOL_MAX,
      connectTimeoutMs: value.DATABASE_CONNECT_TIMEOUT,
      queryTimeoutMs: value.DATABASE_QUERY_TIMEOUT,
    },
    redis: { url: value.REDIS_URL, commandTimeoutMs: value.REDIS_COMMAND_TIMEOUT, keyPrefix: value.EXAI_REDIS_PREFIX },
    http: { host: value.EXAI_HOST, port: value.EXAI_PORT, trustProxy: value.EXAI_TRUST_PROXY },
    cache: {
      ttlMs: value.EXAI_CACHE_TTL,
      maxEntries: value.EXAI_CACHE_MAX_ENTRIES,
      maxBytes: value.EXAI_CACHE_MAX_BYTES,
    },
    limits: { maxMessageBytes: value.EXAI_MAX_MESSAGE_BYTES, maxThreadDepth: value.EXAI_THREAD_MAX_DEPTH },
    files: {
      allowedRoots: (value.EXAI_ALLOWED_ROOTS ?? [cwd]).map((root) => path.resolve(root)),
      rootsExplicit: value.EXAI_ALLOWED_ROOTS !== undefined,
      // The file store and its cache hold every user's uploads: never readable as "a file on this server".
      protectedPaths: [
        path.resolve(cwd, value.EXAI_HOME),
        envFilePath(env, cwd, options.envFile),
        ...(value.EXAI_STORAGE_URL?.kind === 'file' ? [value.EXAI_STORAGE_URL.directory] : []),
        ...(value.EXAI_FILE_CACHE_DIR === undefined ? [] : [path.resolve(cwd, value.EXAI_FILE_CACHE_DIR)]),
      ],
      maxFileBytes: value.EXAI_MAX_FILE_BYTES,
      maxTotalBytes: value.EXAI_MAX_FILES_BYTES,
      maxImageBytes: value.EXAI_MAX_IMAGE_BYTES,
    },
    storage: {
      primary:
        value.EXAI_STORAGE_URL?.kind === 's3'
          ? {
              kind: 's3',
              bucket: value.EXAI_STORAGE_URL.bucket,
              endpoint: value.EXAI_S3_ENDPOINT,
              region: value.EXAI_S3_REGION,
              accessKeyId: value.EXAI_S3_ACCESS_KEY_ID,
              secretAccessKey: value.EXAI_S3_SECRET_ACCESS_KEY,
              forcePathStyle: value.EXAI_S3_FORCE_PATH_STYLE,
            }
          : { kind: 'file', directory: value.EXAI_STORAGE_URL?.directory ?? path.join(path.resolve(cwd, value.EXAI_HOME), 'files') },
      cacheDirectory: path.resolve(cwd, value.EXAI_FILE_CACHE_DIR ?? path.join(value.EXAI_HOME, 'file-cache')),
      cacheBytes: value.EXAI_FILE_CACHE_BYTES,
      memoryBytes: value.EXAI_FILE_MEMORY_BYTES,
      memoryMaxFileBytes: value.EXAI_FILE_MEMORY_MAX_FILE,
      urlSigningSecret: value.EXAI_URL_SIGNING_SECRET,
      signedUrlTtlMs: value.EXAI_SIGNED_URL_TTL,
    },
    search: {
      embedding:
        value.EXAI_EMBEDDING_MODEL === undefined
          ? undefined
          : {
              provider: value.EXAI_EMBEDDING_PROVIDER ?? (value.GLM_API_KEY !== undefined ? 'glm' : 'openai-compat'),
              model: value.EXAI_EMBEDDING_MODEL,
              dimensions: value.EXAI_EMBEDDING_DIMENSIONS,
            },
    },
    tools: { enabled: value.EXAI_TOOLS, disabled: value.EXAI_DISABLED_TOOLS ?? [] },
    auth: {
      mode: value.EXAI_AUTH,
      jwtSecret: value.EXAI_JWT_SECRET,
      jwksUrl: value.EXAI_JWKS_URL,
      jwtIssuer: value.EXAI_JWT_ISSUER,
      jwtAudience: value.EXAI_JWT_AUDIENCE,
      jwtDefaultScopes: value.EXAI_JWT_DEFAULT_SCOPES,
      publicUrl: value.EXAI_PUBLIC_URL?.replace(/\/+$/, ''),
      rotationGraceMs: value.EXAI_KEY_ROTATION_GRACE,
      failuresPerMinute: value.EXAI_AUTH_FAILURES_PER_MINUTE,
    },
    rateLimits: {
      requestsPerMinute: value.EXAI_RATE_REQUESTS_PER_MINUTE,
      tokensPerMinute: value.EXAI_RATE_TOKENS_PER_MINUTE,
      concurrentCalls: value.EXAI_RATE_CONCURRENT_CALLS,
    },
    metrics: { alertRules: value.EXAI_ALERT_RULES },
    logLevel: value.EXAI_LOG_LEVEL,
    localUser: value.EXAI_USER,
    providers: {
      timeoutMs: value.EXAI_PROVIDER_TIMEOUT,
      maxConcurrent: value.EXAI_PROVIDER_CONCURRENCY,
      kimi: { apiKey: value.KIMI_API_KEY, baseUrl: value.KIMI_BASE_URL },
      glm: { apiKey: value.GLM_API_KEY, baseUrl: value.GLM_BASE_URL },
      openaiCompat: {
        apiKey: value.OPENAI_COMPAT_API_KEY,
        baseUrl: value.OPENAI_COMPAT_BASE_URL,
        models: value.OPENAI_COMPAT_MODELS ?? [],
      },
    },
  };
}
