import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, parseDuration, parseSize, type Environment, type LoadConfigOptions } from '../../src/config.js';
import { ExaiError } from '../../src/errors.js';

const folders: string[] = [];

/** A fresh, empty folder to act as the working directory of one test. */
function tempFolder(files: Record<string, string> = {}): string {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'exai-test-config-'));
  folders.push(folder);
  for (const [name, content] of Object.entries(files)) writeFileSync(path.join(folder, name), content);
  return folder;
}

afterAll(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

/** The ExaiError loadConfig throws for this environment. */
function configError(env: Environment, options: LoadConfigOptions = { cwd: tempFolder() }): ExaiError {
  let caught: unknown;
  try {
    loadConfig(env, options);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ExaiError);
  const error = caught as ExaiError;
  expect(error.code).toBe('invalid_config');
  expect(error.message).not.toMatch(/\n\s+at /);
  return error;
}

/** The lines of an invalid_config message that describe a problem. */
function problemLines(error: ExaiError): string[] {
  return error.message.split('\n').slice(1).map((line) => line.trim());
}

describe('file and tool settings', () => {
  it('takes absolute allowed roots and known tool names, and explains anything else', () => {
    const cwd = tempFolder();
    const [a, b] = [tempFolder(), tempFolder()];
    const config = loadConfig({ EXAI_ALLOWED_ROOTS: `${a}, ${b}`, EXAI_TOOLS: 'chat, CodeReview', EXAI_DISABLED_TOOLS: 'precommit', EXAI_MAX_FILE_BYTES: '1KiB' }, { cwd });
    expect(config.files).toMatchObject({ allowedRoots: [a, b], maxFileBytes: 1024 });
    expect(() => loadConfig({ EXAI_ALLOWED_ROOTS: `${a},${path.join(a, 'missing')}` }, { cwd })).toThrow(/EXAI_ALLOWED_ROOTS: every entry must be an existing folder/);
    expect(config.tools).toEqual({ enabled: ['chat', 'codereview'], disabled: ['precommit'] });
    expect(() => loadConfig({ EXAI_ALLOWED_ROOTS: 'src' }, { cwd })).toThrow(/EXAI_ALLOWED_ROOTS: every entry must be an absolute path .*Example: EXAI_ALLOWED_ROOTS=/);
    expect(() => loadConfig({ EXAI_TOOLS: 'chat,telepathy' }, { cwd })).toThrow(/EXAI_TOOLS: unknown tool telepathy; the tools are chat, challenge/);
  });
});

describe('loadConfig storage', () => {
  it('reads an S3 bucket with its endpoint and credentials, and a folder from a file URL', () => {
    const cwd = tempFolder();
    const s3 = loadConfig(
      { EXAI_STORAGE_URL: 's3://exai-files', EXAI_S3_ENDPOINT: 'http://127.0.0.1:9000', EXAI_S3_ACCESS_KEY_ID: 'id', EXAI_S3_SECRET_ACCESS_KEY: 'secret', EXAI_S3_FORCE_PATH_STYLE: 'true' },
      { cwd },
    );
    expect(s3.storage.primary).toEqual({ kind: 's3', bucket: 'exai-files', endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', accessKeyId: 'id', secretAccessKey: 'secret', forcePathStyle: true });
    const folder = loadConfig({ EXAI_STORAGE_URL: `file://${cwd}/objects`, EXAI_FILE_CACHE_BYTES: '0' }, { cwd });
    expect(folder.storage.primary).toEqual({ kind: 'file', directory: path.join(cwd, 'objects') });
    expect(folder.storage.cacheBytes).toBe(0);
    // Every user's uploads live there: no tool may read them as a file of the server.
    expect(folder.files.protectedPaths).toContain(path.join(cwd, 'objects'));
  });

  it('refuses bad storage settings, naming each, and never echoes the secret key', () => {
    const cwd = tempFolder();
    const attempt = (env: Record<string, string>) => () => loadConfig(env, { cwd });
    expect(attempt({ EXAI_STORAGE_URL: 'ftp://files' })).toThrow(/EXAI_STORAGE_URL: must be file:\/\/\/absolute\/folder or s3:\/\/bucket-name/);
    expect(attempt({ EXAI_STORAGE_URL: 's3://Bad_Bucket' })).toThrow(/EXAI_STORAGE_URL/);
    expect(attempt({ EXAI_STORAGE_URL: 's3://b-1', EXAI_S3_ACCESS_KEY_ID: 'id' })).toThrow(/set both or neither/);
    expect(attempt({ EXAI_S3_ENDPOINT: 'http://127.0.0.1:9000' })).toThrow(/EXAI_S3_ENDPOINT: only used with an S3 bucket/);
    expect(attempt({ EXAI_S3_FORCE_PATH_STYLE: 'maybe', EXAI_STORAGE_URL: 's3://b-1' })).toThrow(/EXAI_S3_FORCE_PATH_STYLE: must be true or false/);
    let message = '';
    try {
      loadConfig({ EXAI_STORAGE_URL: 's3://b-1', EXAI_S3_ACCESS_KEY_ID: 'id', EXAI_S3_SECRET_ACCESS_KEY: '', EXAI_URL_SIGNING_SECRET: 'short-signing-secret' }, { cwd });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/EXAI_URL_SIGNING_SECRET: must be at least 32 characters \(value hidden because it is a secret\)/);
    expect(message).not.toContain('short-signing-secret');
  });
});

describe('loadConfig defaults', () => {
  it('gives every setting its documented default when nothing is set', () => {
    const cwd = tempFolder();
    const config = loadConfig({}, { cwd });
    expect(config).toEqual({
      home: path.join(cwd, '.exai'),
      database: { url: undefined, poolMax: 10, connectTimeoutMs: 5000, queryTimeoutMs: 30_000 },
      redis: { url: undefined, commandTimeoutMs: 500, keyPrefix: 'exai' },
      http: { host: '127.0.0.1', port: 8079, trustProxy: false },
      cache: { ttlMs: 24 * 60 * 60 * 1000, maxEntries: 10_000, maxBytes: 64 * 1024 * 1024 },
      limits: { maxMessageBytes: 1024 * 1024, maxThreadDepth: 20 },
      files: { allowedRoots: [cwd], rootsExplicit: false, protectedPaths: [path.join(cwd, '.exai'), path.join(cwd, '.env')], maxFileBytes: 512 * 1024, maxTotalBytes: 2 * 1024 * 1024, maxImageBytes: 5 * 1024 * 1024 },
      storage: {
        primary: { kind: 'file', directory: path.join(cwd, '.exai', 'files') },
        cacheDirectory: path.join(cwd, '.exai', 'file-cache'),
        cacheBytes: 1024 ** 3,
        memoryBytes: 64 * 1024 * 1024,
        memoryMaxFileBytes: 1024 * 1024,
        urlSigningSecret: undefined,
        signedUrlTtlMs: 15 * 60_000,
      },
      search: { embedding: undefined },
      tools: { enabled: undefined, disabled: [] },
      auth: {
        mode: 'required',
        jwtSecret: undefined,
        jwksUrl: undefined,
        jwtIssuer: undefined,
        jwtAudience: undefined,
        jwtDefaultScopes: ['tools:call', 'conversations:read', 'conversations:write', 'files:write', 'metrics:read'],
        publicUrl: undefined,
        rotationGraceMs: 86_400_000,
        failuresPerMinute: 10,
      },
      rateLimits: { requestsPerMinute: 120, tokensPerMinute: 1_000_000, concurrentCalls: 8 },
      metrics: { alertRules: [] },
      logLevel: 'info',
      localUser: 'local',
      providers: {
        timeoutMs: 300_000,
        maxConcurrent: 4,
        kimi: { apiKey: undefined, baseUrl: 'https://api.moonshot.ai/v1' },
        glm: { apiKey: undefined, baseUrl: 'https://api.z.ai/api/paas/v4' },
        openaiCompat: { apiKey: undefined, baseUrl: undefined, models: [] },
      },
    });
  });

  it('reads only the environment it is given, not process.env', () => {
    const cwd = tempFolder();
    const before = process.env.EXAI_PORT;
    process.env.EXAI_PORT = 'not-a-port';
    try {
      expect(loadConfig({}, { cwd }).http.port).toBe(8079);
    } finally {
      if (before === undefined) delete process.env.EXAI_PORT;
      else process.env.EXAI_PORT = before;
    }
  });

  it('treats an empty value as unset', () => {
    const config = loadConfig({ EXAI_PORT: '', EXAI_LOG_LEVEL: '', DATABASE_URL: '' }, { cwd: tempFolder() });
    expect(config.http.port).toBe(8079);
    expect(config.logLevel).toBe('info');
    expect(config.database.url).toBeUndefined();
  });

  it('resolves a relative EXAI_HOME against cwd and keeps an absolute one', () => {
    const cwd = tempFolder();
    expect(loadConfig({ EXAI_HOME: 'state/exai' }, { cwd }).home).toBe(path.join(cwd, 'state', 'exai'));
    const absolute = path.join(os.tmpdir(), 'elsewhere');
    expect(loadConfig({ EXAI_HOME: absolute }, { cwd }).home).toBe(absolute);
  });

  it('parses every kind of value it is given', () => {
    const config = loadConfig(
      {
        DATABASE_URL: 'postgresql://app:pw@db.example.com:5432/exai',
        DATABASE_POOL_MAX: '25',
        DATABASE_CONNECT_TIMEOUT: '2.5s',
        DATABASE_QUERY_TIMEOUT: '1m',
        REDIS_URL: 'rediss://cache.example.com:6380/1',
        REDIS_COMMAND_TIMEOUT: '250ms',
        EXAI_REDIS_PREFIX: 'exai-staging',
        EXAI_HOST: '0.0.0.0',
        EXAI_PORT: '0',
        EXAI_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1',
        EXAI_CACHE_TTL: '7d',
        EXAI_CACHE_MAX_ENTRIES: '5',
        EXAI_CACHE_MAX_BYTES: '512KiB',
        EXAI_MAX_MESSAGE_BYTES: '2mb',
        EXAI_THREAD_MAX_DEPTH: '3',
        EXAI_LOG_LEVEL: 'debug',
        EXAI_USER: 'dev.ops-1',
        KIMI_API_KEY: 'sk-kimi',
        GLM_API_KEY: 'glm-key',
        OPENAI_COMPAT_BASE_URL: 'http://127.0.0.1:11434/v1',
        OPENAI_COMPAT_API_KEY: 'ollama',
        OPENAI_COMPAT_MODELS: ' llama3.1:8b , qwen2.5-coder:7b ,',
      },
      { cwd: tempFolder() },
    );
    expect(config.database).toEqual({ url: 'postgresql://app:pw@db.example.com:5432/exai', poolMax: 25, connectTimeoutMs: 2500, queryTimeoutMs: 60_000 });
    expect(config.redis).toEqual({ url: 'rediss://cache.example.com:6380/1', commandTimeoutMs: 250, keyPrefix: 'exai-staging' });
    expect(config.http).toEqual({ host: '0.0.0.0', port: 0, trustProxy: ['10.0.0.0/8', '127.0.0.1'] });
    expect(config.cache).toEqual({ ttlMs: 7 * 86_400_000, maxEntries: 5, maxBytes: 512 * 1024 });
    expect(config.limits).toEqual({ maxMessageBytes: 2_000_000, maxThreadDepth: 3 });
    expect(config.logLevel).toBe('debug');
    expect(config.localUser).toBe('dev.ops-1');
    expect(config.providers.kimi.apiKey).toBe('sk-kimi');
    expect(config.providers.glm.apiKey).toBe('glm-key');
    expect(config.providers.openaiCompat).toEqual({
      apiKey: 'ollama',
      baseUrl: 'http://127.0.0.1:11434/v1',
      models: ['llama3.1:8b', 'qwen2.5-coder:7b'],
    });
  });
});

describe('loadConfig .env file', () => {
  it('reads values from .env in cwd, the real environment taking precedence', () => {
    const cwd = tempFolder({
      '.env': ['# settings for local runs', 'EXAI_PORT=9000', 'EXAI_HOST="0.0.0.0"', 'EXAI_LOG_LEVEL=debug', "KIMI_API_KEY='from-dotenv'", ''].join('\n'),
    });
    const config = loadConfig({ EXAI_PORT: '9100', KIMI_API_KEY: 'from-env' }, { cwd });
    expect(config.http).toEqual({ host: '0.0.0.0', port: 9100, trustProxy: false });
    expect(config.logLevel).toBe('debug');
    expect(config.providers.kimi.apiKey).toBe('from-env');
  });

  it('runs without a .env file', () => {
    expect(loadConfig({}, { cwd: tempFolder() }).http.port).toBe(8079);
  });

  it('reads the file named by EXAI_ENV_FILE (relative to cwd) or by the envFile option instead of .env', () => {
    const cwd = tempFolder({ '.env': 'EXAI_PORT=9000\n', 'staging.env': 'EXAI_PORT=9001\n', 'other.env': 'EXAI_PORT=9002\n' });
    expect(loadConfig({ EXAI_ENV_FILE: 'staging.env' }, { cwd }).http.port).toBe(9001);
    expect(loadConfig({}, { cwd, envFile: path.join(cwd, 'other.env') }).http.port).toBe(9002);
    // The option wins over the variable.
    expect(loadConfig({ EXAI_ENV_FILE: 'staging.env' }, { cwd, envFile: 'other.env' }).http.port).toBe(9002);
  });

  it('reports an EXAI_ENV_FILE that does not exist', () => {
    const cwd = tempFolder({ '.env': 'EXAI_PORT=9000\n' });
    const error = configError({ EXAI_ENV_FILE: 'missing.env' }, { cwd });
    expect(error.message).toContain('EXAI_ENV_FILE');
    expect(error.message).toContain(path.join(cwd, 'missing.env'));
    expect(error.message).toContain('does not exist');
    expect(error.message).toContain('Example: EXAI_ENV_FILE=');
    const viaOption = configError({}, { cwd, envFile: 'nowhere.env' });
    expect(viaOption.message).toContain(path.join(cwd, 'nowhere.env'));
  });

  it('reports bad values that come from the .env file like any other', () => {
    const cwd = tempFolder({ '.env': 'EXAI_PORT=abc\n' });
    const error = configError({}, { cwd });
    expect(error.message).toContain('EXAI_PORT: must be a whole number (got "abc"). Example: EXAI_PORT=8079');
  });
});

describe('loadConfig secret files', () => {
  it('reads DATABASE_URL_FILE and KIMI_API_KEY_FILE, stripping the trailing newline', () => {
    const cwd = tempFolder({
      'database-url': 'postgresql://app:s3cret@db.example.com:5432/exai\n',
      'kimi-key': 'sk-from-file\r\n',
    });
    const config = loadConfig(
      { DATABASE_URL_FILE: path.join(cwd, 'database-url'), KIMI_API_KEY_FILE: 'kimi-key' },
      { cwd },
    );
    expect(config.database.url).toBe('postgresql://app:s3cret@db.example.com:5432/exai');
    expect(config.providers.kimi.apiKey).toBe('sk-from-file');
  });

  it('reads every secret variable from its _FILE variant, also when named in .env', () => {
    const cwd = tempFolder({
      redis: 'redis://:pw@127.0.0.1:6379/2\n',
      glm: 'glm-secret\n',
      compat: 'compat-secret',
      '.env': 'GLM_API_KEY_FILE=glm\nOPENAI_COMPAT_API_KEY_FILE=compat\n',
    });
    const config = loadConfig({ REDIS_URL_FILE: 'redis' }, { cwd });
    expect(config.redis.url).toBe('redis://:pw@127.0.0.1:6379/2');
    expect(config.redis.keyPrefix).toBe('exai');
    expect(config.providers.glm.apiKey).toBe('glm-secret');
    expect(config.providers.openaiCompat.apiKey).toBe('compat-secret');
  });

  it('keeps inner newlines and strips only the last one', () => {
    const cwd = tempFolder({ key: 'line one\nline two\n' });
    expect(loadConfig({ KIMI_API_KEY_FILE: 'key' }, { cwd }).providers.kimi.apiKey).toBe('line one\nline two');
  });

  it('refuses a secret set both directly and through its _FILE variant', () => {
    const cwd = tempFolder({ key: 'sk-file\n', '.env': 'DATABASE_URL=postgresql://db.example.com/exai\n', 'db-url': 'postgresql://x.example.com/y\n' });
    const error = configError({ KIMI_API_KEY: 'sk-direct', KIMI_API_KEY_FILE: 'key', DATABASE_URL_FILE: 'db-url' }, { cwd });
    expect(error.message).toContain('KIMI_API_KEY: set either KIMI_API_KEY or KIMI_API_KEY_FILE, not both');
    expect(error.message).toContain('Example: KIMI_API_KEY_FILE=/run/secrets/kimi_api_key');
    // The direct value may come from .env too.
    expect(error.message).toContain('DATABASE_URL: set either DATABASE_URL or DATABASE_URL_FILE, not both');
    expect(error.message).not.toContain('sk-direct');
    expect(error.message).not.toContain('sk-file');
  });

  it('reports an unreadable secret file, naming the _FILE variable and why', () => {
    const cwd = tempFolder();
    mkdirSync(path.join(cwd, 'a-folder'));
    const error = configError({ KIMI_API_KEY_FILE: 'no-such-file', GLM_API_KEY_FILE: 'a-folder' }, { cwd });
    const lines = problemLines(error);
    expect(lines).toHaveLength(2);
    expect(error.message).toContain('KIMI_API_KEY_FILE: cannot read no-such-file (ENOENT). Example: KIMI_API_KEY_FILE=/run/secrets/kimi_api_key');
    expect(error.message).toContain('GLM_API_KEY_FILE: cannot read a-folder (EISDIR)');
  });

  it('validates a secret read from a file without echoing it', () => {
    const cwd = tempFolder({ 'db-url': 'mysql://root:hunter2@db.example.com/exai\n' });
    const error = configError({ DATABASE_URL_FILE: 'db-url' }, { cwd });
    expect(error.message).toContain('DATABASE_URL: must be a URL starting with postgres:// or postgresql://');
    expect(error.message).toContain('value hidden because it is a secret');
    expect(error.message).not.toContain('hunter2');
  });
});

describe('loadConfig bad values', () => {
  const cases: { variable: string; value: string; reason: string; shown: string; example: string }[] = [
    { variable: 'EXAI_PORT', value: 'abc', reason: 'must be a whole number', shown: '(got "abc")', example: 'EXAI_PORT=8079' },
    { variable: 'EXAI_PORT', value: '70000', reason: 'must be at most 65535', shown: '(got "70000")', example: 'EXAI_PORT=8079' },
    { variable: 'EXAI_PORT', value: '-1', reason: 'must be a whole number', shown: '(got "-1")', example: 'EXAI_PORT=8079' },
    {
      variable: 'EXAI_CACHE_TTL',
      value: 'forever',
      reason: 'must be a duration such as 90s, 30m, 24h or 7d',
      shown: '(got "forever")',
      example: 'EXAI_CACHE_TTL=24h',
    },
    {
      variable: 'EXAI_CACHE_TTL',
      value: '10ms',
      reason: 'must be between 1000 ms and',
      shown: '(got "10ms")',
      example: 'EXAI_CACHE_TTL=24h',
    },
    {
      variable: 'EXAI_LOG_LEVEL',
      value: 'loud',
      reason: 'must be one of fatal, error, warn, info, debug, trace, silent',
      shown: '(got "loud")',
      example: 'EXAI_LOG_LEVEL=info',
    },
    {
      variable: 'DATABASE_URL',
      value: 'mysql://x',
      reason: 'must be a URL starting with postgres:// or postgresql:// and naming a host',
      shown: '(value hidden because it is a secret)',
      example: 'DATABASE_URL=postgresql://',
    },
    {
      variable: 'DATABASE_URL',
      value: 'not a url',
      reason: 'must be a URL starting with postgres:// or postgresql:// and naming a host',
      shown: '(value hidden because it is a secret)',
      example: 'DATABASE_URL=postgresql://',
    },
    {
      variable: 'REDIS_URL',
      value: 'http://localhost',
      reason: 'must be a URL starting with redis:// or rediss:// and naming a host',
      shown: '(value hidden because it is a secret)',
      example: 'REDIS_URL=redis://127.0.0.1:6379/0',
    },
    {
      variable: 'EXAI_MAX_MESSAGE_BYTES',
      value: '1tb',
      reason: 'must be a size such as 1048576, 512KiB or 1MiB',
      shown: '(got "1tb")',
      example: 'EXAI_MAX_MESSAGE_BYTES=1MiB',
    },
    {
      variable: 'EXAI_MAX_MESSAGE_BYTES',
      value: '100',
      reason: 'must be between 1024 and',
      shown: '(got "100")',
      example: 'EXAI_MAX_MESSAGE_BYTES=1MiB',
    },
    { variable: 'DATABASE_POOL_MAX', value: '0', reason: 'must be at least 1', shown: '(got "0")', example: 'DATABASE_POOL_MAX=10' },
    { variable: 'EXAI_THREAD_MAX_DEPTH', value: '1.5', reason: 'must be a whole number', shown: '(got "1.5")', example: 'EXAI_THREAD_MAX_DEPTH=20' },
    { variable: 'EXAI_USER', value: 'Alice', reason: 'must be a lower-case handle', shown: '(got "Alice")', example: 'EXAI_USER=local' },
    {
      variable: 'KIMI_BASE_URL',
      value: 'ftp://files.example.com',
      reason: 'must be a URL starting with http:// or https:// and naming a host',
      shown: '(got "ftp://files.example.com")',
      example: 'KIMI_BASE_URL=https://api.moonshot.ai/v1',
    },
    { variable: 'EXAI_REDIS_PREFIX', value: 'has space', reason: 'must be 1-50 letters, digits', shown: '(got "has space")', example: 'EXAI_REDIS_PREFIX=exai-staging' },
    { variable: 'EXAI_AUTH', value: 'none', reason: 'must be required', shown: '(got "none")', example: 'EXAI_AUTH=required' },
    { variable: 'EXAI_JWT_DEFAULT_SCOPES', value: 'tools:call,root', reason: 'unknown scope root', shown: '(got "tools:call,root")', example: 'EXAI_JWT_DEFAULT_SCOPES=tools:call,conversations:read' },
    { variable: 'EXAI_TRUST_PROXY', value: 'maybe', reason: 'must be false, a number of proxy hops', shown: '(got "maybe")', example: 'EXAI_TRUST_PROXY=10.0.0.0/8,127.0.0.1' },
    { variable: 'EXAI_RATE_REQUESTS_PER_MINUTE', value: '-5', reason: 'must be a whole number', shown: '(got "-5")', example: 'EXAI_RATE_REQUESTS_PER_MINUTE=120' },
    { variable: 'EXAI_JWKS_URL', value: 'jwks.json', reason: 'must be a URL', shown: '(got "jwks.json")', example: 'EXAI_JWKS_URL=https://your-project.supabase.co/auth/v1/.well-known/jwks.json' },
    {
      variable: 'OPENAI_COMPAT_MODELS',
      value: ' , ',
      reason: 'must list at least one model name',
      shown: '(got " , ")',
      example: 'OPENAI_COMPAT_MODELS=llama3.1:8b,qwen2.5-coder:7b',
    },
  ];

  it.each(cases)('$variable=$value: names the variable, the problem and an example', ({ variable, value, reason, shown, example }) => {
    const error = configError({ [variable]: value });
    const lines = problemLines(error);
    expect(error.message.split('\n')[0]).toBe('Invalid configuration:');
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(line.startsWith(`${variable}: `)).toBe(true);
    expect(line).toContain(reason);
    expect(line).toContain(shown);
    expect(line).toContain(`Example: ${example}`);
  });

  it('reports every problem together in one message', () => {
    const cwd = tempFolder();
    const error = configError(
      {
        EXAI_PORT: 'abc',
        EXAI_CACHE_TTL: 'forever',
        EXAI_LOG_LEVEL: 'loud',
        DATABASE_URL: 'mysql://x',
        REDIS_URL: 'http://localhost',
        EXAI_MAX_MESSAGE_BYTES: '1tb',
        KIMI_API_KEY_FILE: 'missing-key',
        EXAI_ENV_FILE: 'missing.env',
      },
      { cwd },
    );
    const lines = problemLines(error);
    expect(lines).toHaveLength(8);
    for (const variable of ['EXAI_ENV_FILE', 'KIMI_API_KEY_FILE', 'DATABASE_URL', 'REDIS_URL', 'EXAI_PORT', 'EXAI_CACHE_TTL', 'EXAI_MAX_MESSAGE_BYTES', 'EXAI_LOG_LEVEL']) {
      expect(lines.filter((line) => line.startsWith(`${variable}: `))).toHaveLength(1);
    }
    for (const line of lines) expect(line).toMatch(/Example: [A-Z_]+=\S/);
  });

  it('never echoes a secret, even a malformed one', () => {
    const error = configError({
      DATABASE_URL: 'postgres//user:hunter2@host',
      REDIS_URL: 'http://:swordfish@cache.example.com',
    });
    expect(error.message).toContain('DATABASE_URL: ');
    expect(error.message).toContain('REDIS_URL: ');
    expect(error.message).not.toContain('hunter2');
    expect(error.message).not.toContain('swordfish');
    expect(error.message).not.toContain('user:');
    expect(problemLines(error).every((line) => line.includes('value hidden because it is a secret'))).toBe(true);
  });

  it('shortens a long bad value it shows', () => {
    const long = `A${'b'.repeat(200)}`;
    const error = configError({ EXAI_USER: long });
    expect(error.message).toContain(`(got "${long.slice(0, 57)}...")`);
    expect(error.message).not.toContain(long.slice(0, 61));
  });
});

describe('parseDuration', () => {
  it.each([
    ['24h', 86_400_000],
    ['90s', 90_000],
    ['30m', 1_800_000],
    ['500ms', 500],
    ['7d', 604_800_000],
    ['45', 45_000],
    ['0', 0],
    ['1.5h', 5_400_000],
    ['2.5s', 2500],
    [' 2H ', 7_200_000],
    ['10 MS', 10],
    ['2 m', 120_000],
  ])('%j is %d ms', (text, expected) => {
    expect(parseDuration(text)).toBe(expected);
  });

  it.each(['', 'forever', '-1s', '1y', '1h30m', '1e3', 's', '.5s', '1,5h', '24 hours'])('%j is not a duration', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe('parseSize', () => {
  it.each([
    ['1024', 1024],
    ['0', 0],
    ['10b', 10],
    ['512kb', 512_000],
    ['512KiB', 524_288],
    ['1MiB', 1_048_576],
    ['2mb', 2_000_000],
    ['1gib', 1024 ** 3],
    ['3GB', 3_000_000_000],
    [' 1 KiB ', 1024],
  ])('%j is %d bytes', (text, expected) => {
    expect(parseSize(text)).toBe(expected);
  });

  it.each(['', '1tb', '1.5MiB', '-1', 'lots', 'MiB', '1 mega', '1k'])('%j is not a size', (text) => {
    expect(parseSize(text)).toBeUndefined();
  });
});

describe('authentication settings', () => {
  it('refuses a short JWT secret without echoing it', () => {
    const error = (() => {
      try {
        loadConfig({ EXAI_JWT_SECRET: 'short-secret-value' }, { cwd: tempFolder() });
      } catch (caught) {
        return caught as Error;
      }
      return undefined;
    })();
    expect(error?.message).toContain('EXAI_JWT_SECRET: must be at least 32 characters');
    expect(error?.message).not.toContain('short-secret-value');
  });

  it('allows local mode only on a loopback address', () => {
    expect(loadConfig({ EXAI_AUTH: 'local', EXAI_HOST: '127.0.0.1' }, { cwd: tempFolder() }).auth.mode).toBe('local');
    expect(loadConfig({ EXAI_AUTH: 'local', EXAI_HOST: '::1' }, { cwd: tempFolder() }).auth.mode).toBe('local');
    expect(() => loadConfig({ EXAI_AUTH: 'local', EXAI_HOST: '0.0.0.0' }, { cwd: tempFolder() })).toThrow(/EXAI_AUTH: local mode .* only on a loopback address/);
  });

  it('reads proxy trust as hops or addresses, never as trust in every hop', () => {
    expect(loadConfig({ EXAI_TRUST_PROXY: '2' }, { cwd: tempFolder() }).http.trustProxy).toBe(2);
    expect(loadConfig({ EXAI_TRUST_PROXY: '::1, 10.0.0.0/8' }, { cwd: tempFolder() }).http.trustProxy).toEqual(['::1', '10.0.0.0/8']);
    // Any client could then pick the address its failed logins count against.
    expect(() => loadConfig({ EXAI_TRUST_PROXY: 'true' }, { cwd: tempFolder() })).toThrow(/EXAI_TRUST_PROXY: must be false, a number of proxy hops/);
    expect(() => loadConfig({ EXAI_TRUST_PROXY: '::::' }, { cwd: tempFolder() })).toThrow(/EXAI_TRUST_PROXY/);
    expect(() => loadConfig({ EXAI_TRUST_PROXY: '1', EXAI_AUTH: 'local' }, { cwd: tempFolder() })).toThrow(/local mode cannot run behind a proxy/);
  });

  it('accepts JWTs only with an audience to check', () => {
    const secret = 'x'.repeat(40);
    expect(() => loadConfig({ EXAI_JWT_SECRET: secret }, { cwd: tempFolder() })).toThrow(/EXAI_JWT_AUDIENCE: must be set when JWTs are accepted/);
    expect(loadConfig({ EXAI_JWT_SECRET: secret, EXAI_JWT_AUDIENCE: 'authenticated' }, { cwd: tempFolder() }).auth.jwtAudience).toBe('authenticated');
  });
});
