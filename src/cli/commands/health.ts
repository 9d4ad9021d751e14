import type { Command } from 'commander';
import type { HealthReport } from '../../app/health.js';
import { localUrl } from '../../app/server.js';
import { printData } from '../output.js';
import type { CliContext } from '../context.js';


/** Exit code 0 when the server answers ok (or degraded, unless --strict), 1 otherwise: the Docker HEALTHCHECK. */
export function registerHealth(program: Command, context: CliContext): void {
  program
    .command('health')
    .description("ask a running server for its health; exits 0 when healthy, 1 otherwise")
    .option('--url <url>', 'server base URL (default: from EXAI_HOST and EXAI_PORT)')
    .option('--timeout <ms>', 'give up after this many milliseconds', '5000')
    .option('--strict', 'treat degraded (e.g. Redis down) as unhealthy')
    .option('--json', 'print JSON')
    .action(async (options: { url?: string; timeout: string; strict?: boolean; json?: boolean }) => {
      const config = context.config();
      const base = options.url ?? localUrl(config.http.host, config.http.port);
      const timeoutMs = Number(options.timeout);
      let report: HealthReport | { status: 'unreachable'; url: string; error: string };
      try {
        const response = await fetch(new URL('/health', base), {
          signal: AbortSignal.timeout(Number.isFinite(timeoutMs) && timeoutMs > 0 ? timeoutMs : 5000),
        });
        report = (await response.json()) as HealthReport;
      } catch (error) {
        report = { status: 'unreachable', url: base, error: (error as Error).message };
      }
      printData(report, options, () => {
        if (report.status === 'unreachable') return `unreachable: no exai server answered at ${base} (${report.error})`;
        const parts = Object.entries(report.components).map(
          ([name, component]) => `${name}: ${component.status} (${component.backend}${component.detail ? `: ${component.detail}` : ''})`,
        );
        return `${report.status}  version ${report.version}, up ${report.uptime_s} s\n${parts.join('\n')}`;
      });
      const healthy = report.status === 'ok' || (report.status === 'degraded' && options.strict !== true);
      context.exitCode = healthy ? 0 : 1;
    });
}
