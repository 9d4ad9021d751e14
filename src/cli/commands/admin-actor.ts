/** Who runs an administration command, for the audit log: the OS user at this machine. */
import { userInfo } from 'node:os';
import type { AuditActor } from '../../audit/audit-log.js';

export function cliActor(): AuditActor {
  let name = 'unknown';
  try {
    name = userInfo().username;
  } catch {
    // No passwd entry (some containers): the audit row still says it came from the CLI.
  }
  return { label: `cli:${name}`, source: 'cli' };
}
