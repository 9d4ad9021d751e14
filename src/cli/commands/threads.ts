import type { Command } from 'commander';
import type { ThreadStatus } from '../../conversations/types.js';
import { withDataAccess, type ListOptions } from '../data-access.js';
import { printData, table } from '../output.js';
import { limitOption } from '../options.js';
import type { CliContext } from '../context.js';


export function registerThreads(program: Command, context: CliContext): void {
  const threads = program.command('threads').description('list and show conversation threads');

  threads
    .command('list')
    .description('list threads, most recently updated first')
    .option('--user <handle>', 'whose threads (default: EXAI_USER)')
    .option('--limit <n>', 'how many', limitOption(200))
    .option('--before <cursor>', 'the next page, from a previous nextCursor')
    .option('--status <status>', 'active or archived')
    .option('--json', 'print JSON')
    .action(async (options: { user?: string; limit?: number; before?: string; status?: string; json?: boolean }) => {
      const config = context.config();
      const list: ListOptions = {};
      if (options.limit !== undefined) list.limit = options.limit;
      if (options.before !== undefined) list.before = options.before;
      if (options.status !== undefined) list.status = options.status as ThreadStatus;
      const page = await withDataAccess(config, context.logger(config, 'threads'), (access) => access.listThreads(options.user, list));
      printData(page, options, () => {
        const rows = page.threads.map((thread) => [
          thread.id,
          thread.updatedAt,
          String(thread.turnCount),
          thread.toolName ?? '',
          thread.title ?? '',
        ]);
        const more = page.nextCursor === undefined ? '' : `\n\nMore: exai threads list --before ${page.nextCursor}`;
        return rows.length === 0 ? 'No threads yet.' : `${table(['continuation id', 'updated', 'turns', 'tool', 'title'], rows)}${more}`;
      });
    });

  threads
    .command('show <continuation-id>')
    .description('show one thread with all its turns')
    .option('--user <handle>', 'whose thread (default: EXAI_USER)')
    .option('--json', 'print JSON')
    .action(async (id: string, options: { user?: string; json?: boolean }) => {
      const config = context.config();
      const thread = await withDataAccess(config, context.logger(config, 'threads'), (access) => access.loadThread(options.user, id));
      printData(thread, options, () => {
        const header = `${thread.id}  ${thread.title ?? '(untitled)'}  [${thread.status}, ${thread.turnCount} turns]`;
        const turns = thread.turns.map((turn) => {
          const who = [turn.role, turn.model, turn.toolName].filter(Boolean).join(' · ');
          return `#${turn.seq} ${who} (${turn.createdAt})\n${turn.content}`;
        });
        return [header, ...turns].join('\n\n');
      });
    });
}
