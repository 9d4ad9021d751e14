/** `exai users …`: the people (or services) that own threads and keys. */
import type { Command } from 'commander';
import { runAdmin } from '../data-access.js';
import type { CliContext } from '../context.js';
import { printData, table } from '../output.js';
import { cliActor } from './admin-actor.js';

export function registerUsers(program: Command, context: CliContext): void {
  const users = program.command('users').description('create, list and delete users');

  users
    .command('create <handle>')
    .description('create a user (lower-case letters, digits, . _ -)')
    .option('--display-name <name>', 'a name for people')
    .option('--json', 'print JSON')
    .action(async (handle: string, options: { displayName?: string; json?: boolean }) => {
      const config = context.config();
      const input = options.displayName === undefined ? { handle } : { handle, displayName: options.displayName };
      const user = await runAdmin(config, context.logger(config, 'users'), 'users.create', input, cliActor());
      printData(user, options, () => `Created user ${user.handle} (${user.id}). Next: exai keys create --user ${user.handle}`);
    });

  users
    .command('list')
    .description('list users with their active keys and threads')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const config = context.config();
      const list = await runAdmin(config, context.logger(config, 'users'), 'users.list', {}, cliActor());
      printData(list, options, () =>
        table(['handle', 'id', 'active keys', 'threads', 'created'], list.map((user) => [user.handle, user.id, String(user.activeKeys), String(user.threads), user.createdAt])),
      );
    });

  users
    .command('delete <handle>')
    .description('delete a user with all their threads and keys')
    .option('--json', 'print JSON')
    .action(async (handle: string, options: { json?: boolean }) => {
      const config = context.config();
      const result = await runAdmin(config, context.logger(config, 'users'), 'users.delete', { handle }, cliActor());
      printData({ handle, ...result }, options, () => `Deleted user ${handle} with ${result.threads} thread(s) and ${result.keys} key(s).`);
    });
}
