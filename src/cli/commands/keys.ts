/** `exai keys …`: API keys for HTTP clients. A new key is printed once and never stored. */
import type { Command } from 'commander';
import { maxKeyDurationMs, type ApiKeyInfo } from '../../auth/api-keys.js';
import { parseScopes } from '../../auth/scopes.js';
import { parseDuration } from '../../config.js';
import { ExaiError } from '../../errors.js';
import { runAdmin } from '../data-access.js';
import type { CliContext } from '../context.js';
import { printData, table } from '../output.js';
import { cliActor } from './admin-actor.js';

function durationOption(name: string, allowZero: boolean) {
  return (text: string): number => {
    const ms = parseDuration(text);
    if (ms === undefined || ms < (allowZero ? 0 : 1) || ms > maxKeyDurationMs) {
      throw new ExaiError('invalid_argument', `${name} must be a duration from ${allowZero ? '0s' : '1s'} to 36500d, such as 90m, 24h or 30d (got ${JSON.stringify(text)}).`);
    }
    return ms;
  };
}

function countOption(name: string) {
  return (text: string): number => {
    const value = Number(text);
    if (!/^\d+$/.test(text) || value > 1_000_000_000) throw new ExaiError('invalid_argument', `${name} must be a whole number, 0 for unlimited (got ${JSON.stringify(text)}).`);
    return value;
  };
}

function keyRows(keys: ApiKeyInfo[]): string {
  if (keys.length === 0) return 'No API keys.';
  return table(
    ['prefix', 'user', 'name', 'state', 'scopes', 'expires', 'id'],
    keys.map((key) => [
      key.prefix,
      key.userHandle,
      key.name ?? '',
      // A rotated key in its grace period is still active; say so, since it stops at its expiry.
      key.replacedBy !== null && key.state === 'active' ? 'active (rotated)' : key.state,
      key.scopes.join(','),
      key.expiresAt ?? 'never',
      key.id,
    ]),
  );
}

export function registerKeys(program: Command, context: CliContext): void {
  const keys = program.command('keys').description('create, list, revoke and rotate API keys');

  keys
    .command('create')
    .description('create an API key; it is printed once')
    .requiredOption('--user <handle>', 'the user the key acts as')
    .option('--scopes <list>', 'comma-separated: tools:call, conversations:read, conversations:write, files:write, metrics:read, metrics:scrape, admin (default: all but admin and metrics:scrape)', parseScopes)
    .option('--expires <duration>', 'lifetime such as 30d or 12h (default: never)', durationOption('--expires', false))
    .option('--name <name>', 'what the key is for')
    .option('--rpm <n>', 'requests per minute (default: EXAI_RATE_REQUESTS_PER_MINUTE)', countOption('--rpm'))
    .option('--tpm <n>', 'model tokens per minute (default: EXAI_RATE_TOKENS_PER_MINUTE)', countOption('--tpm'))
    .option('--concurrency <n>', 'calls in flight (default: EXAI_RATE_CONCURRENT_CALLS)', countOption('--concurrency'))
    .option('--json', 'print JSON; the key is in its `key` field')
    .action(async (options: { user: string; scopes?: string[]; expires?: number; name?: string; rpm?: number; tpm?: number; concurrency?: number; json?: boolean }) => {
      const config = context.config();
      const input = {
        user: options.user,
        ...(options.scopes && { scopes: options.scopes }),
        ...(options.expires !== undefined && { expiresInMs: options.expires }),
        ...(options.name !== undefined && { name: options.name }),
        ...(options.rpm !== undefined && { requestsPerMinute: options.rpm }),
        ...(options.tpm !== undefined && { tokensPerMinute: options.tpm }),
        ...(options.concurrency !== undefined && { concurrentCalls: options.concurrency }),
      };
      const created = await runAdmin(config, context.logger(config, 'keys'), 'keys.create', input, cliActor());
      printData(created, options, () =>
        [
          `API key for ${created.userHandle} (prefix ${created.prefix}, scopes ${created.scopes.join(',')}, expires ${created.expiresAt ?? 'never'}):`,
          '',
          `  ${created.key}`,
          '',
          'It is shown only now: store it safely. Clients send it as `Authorization: Bearer <key>`.',
        ].join('\n'),
      );
    });

  keys
    .command('list')
    .description('list API keys (never the keys themselves)')
    .option('--user <handle>', 'only this user\u2019s keys')
    .option('--json', 'print JSON')
    .action(async (options: { user?: string; json?: boolean }) => {
      const config = context.config();
      const list = await runAdmin(config, context.logger(config, 'keys'), 'keys.list', options.user === undefined ? {} : { user: options.user }, cliActor());
      printData(list, options, () => keyRows(list));
    });

  keys
    .command('revoke <key>')
    .description('revoke a key by id or prefix; every instance refuses it within a second')
    .option('--json', 'print JSON')
    .action(async (key: string, options: { json?: boolean }) => {
      const config = context.config();
      const revoked = await runAdmin(config, context.logger(config, 'keys'), 'keys.revoke', { key }, cliActor());
      printData(revoked, options, () =>
        revoked.alreadyRevoked ? `Key ${revoked.prefix} of ${revoked.userHandle} was already revoked (at ${revoked.revokedAt}).` : `Revoked key ${revoked.prefix} of ${revoked.userHandle}.`,
      );
    });

  keys
    .command('rotate <key>')
    .description('replace a key: the new one works at once, the old one until the grace period ends')
    .option('--grace <duration>', 'how long the old key keeps working (default: EXAI_KEY_ROTATION_GRACE)', durationOption('--grace', true))
    .option('--json', 'print JSON; the new key is in its `key` field')
    .action(async (key: string, options: { grace?: number; json?: boolean }) => {
      const config = context.config();
      const input = options.grace === undefined ? { key } : { key, graceMs: options.grace };
      const { created, previous } = await runAdmin(config, context.logger(config, 'keys'), 'keys.rotate', input, cliActor());
      printData({ ...created, previous }, options, () =>
        [
          `New API key for ${created.userHandle} (prefix ${created.prefix}):`,
          '',
          `  ${created.key}`,
          '',
          `The old key ${previous.prefix} keeps working until ${previous.expiresAt ?? 'never'}.`,
        ].join('\n'),
      );
    });
}
