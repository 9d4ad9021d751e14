/**
 * `npm run bench [-- --quick] [-- --only=append,load,mcp,metrics] [-- --backend=pglite,postgres]`
 *
 * Runs every registered benchmark on every available backend, prints a table
 * on stdout and writes bench/results/latest.json. Missed targets are listed but
 * do not fail the run (exit 0); a benchmark that crashes does (exit 1).
 * To add a figure: write bench/<name>.ts exporting a Benchmark and list it below.
 */
import { performance } from 'node:perf_hooks';
import { createLogger } from '../src/logger.js';
import { appendBenchmark } from './append.js';
import { externalUrls, openPgliteBackend, openPostgresBackend } from './backends.js';
import { filesBenchmark } from './files.js';
import {
  describeMiss,
  formatDetails,
  formatTable,
  missedTargets,
  writeResults,
  type BenchBackend,
  type BenchResult,
  type Benchmark,
} from './harness.js';
import { loadBenchmark } from './load.js';
import { mcpBenchmark } from './mcp.js';
import { metricsBenchmark } from './metrics.js';
import { searchQualityBenchmark } from './search-quality.js';
import { searchScopeBenchmark } from './search-scope.js';
import { searchBenchmark } from './search.js';

const benchmarks: Benchmark[] = [appendBenchmark, loadBenchmark, mcpBenchmark, metricsBenchmark, filesBenchmark, searchBenchmark, searchScopeBenchmark, searchQualityBenchmark];

interface Options {
  quick: boolean;
  only: Set<string> | undefined;
  backends: Set<string> | undefined;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { quick: false, only: undefined, backends: undefined };
  for (const arg of argv) {
    if (arg === '--quick') options.quick = true;
    else if (arg.startsWith('--only=')) options.only = new Set(arg.slice('--only='.length).split(','));
    else if (arg.startsWith('--backend=')) options.backends = new Set(arg.slice('--backend='.length).split(','));
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(
        'usage: npm run bench -- [--quick] [--only=<id,…>] [--backend=pglite,postgres]\n' +
          `benchmarks: ${benchmarks.map((b) => `${b.id} (${b.description})`).join('; ')}\n` +
          'PostgreSQL + Redis run when BENCH_DATABASE_URL and BENCH_REDIS_URL (or TEST_DATABASE_URL and TEST_REDIS_URL) are set.\n',
      );
      process.exit(0);
    } else {
      process.stderr.write(`bench: unknown argument ${arg} (try --help)\n`);
      process.exit(2);
    }
  }
  return options;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const started = performance.now();
  const logger = createLogger('silent');
  const progress = (message: string) => process.stderr.write(`bench: ${message}\n`);

  // On Ctrl-C: drop the database and Redis keys, write nothing, exit 130.
  const cleanups = new Set<() => Promise<void>>();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted = true;
    process.stderr.write(`bench: ${signal}, cleaning up\n`);
    void Promise.allSettled([...cleanups].map((cleanup) => cleanup())).then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const openers: { kind: string; open: () => Promise<BenchBackend> }[] = [];
  if (options.backends === undefined || options.backends.has('pglite')) {
    openers.push({ kind: 'pglite', open: () => openPgliteBackend(logger) });
  }
  if (options.backends === undefined || options.backends.has('postgres')) {
    const urls = externalUrls();
    if ('missing' in urls) {
      process.stderr.write(`bench: ${urls.missing} not set: running on embedded PGlite only, without PostgreSQL + Redis.\n`);
    } else {
      openers.push({ kind: 'postgres', open: () => openPostgresBackend(urls, logger, (cleanup) => cleanups.add(cleanup)) });
    }
  }
  const selected = benchmarks.filter((b) => options.only === undefined || options.only.has(b.id));
  progress(`${options.quick ? 'quick' : 'full'} run: ${selected.map((b) => b.id).join(', ')} on ${openers.map((o) => o.kind).join(', ')}`);

  const results: BenchResult[] = [];
  let crashed = false;
  for (const opener of openers) {
    const backendStart = performance.now();
    let backend: BenchBackend;
    try {
      backend = await opener.open();
    } catch (error) {
      process.stderr.write(`bench: cannot open the ${opener.kind} backend: ${(error as Error).message}\n`);
      crashed = true;
      continue;
    }
    cleanups.add(() => backend.close());
    progress(`${backend.name} ready in ${seconds(performance.now() - backendStart)}`);
    try {
      for (const benchmark of selected) {
        const start = performance.now();
        try {
          results.push(
            ...(await benchmark.run({
              backend,
              quick: options.quick,
              logger,
              progress: (m) => progress(`[${backend.name}] ${m}`),
              registerCleanup: (cleanup) => {
                cleanups.add(cleanup);
                return () => cleanups.delete(cleanup);
              },
            })),
          );
        } catch (error) {
          if (interrupted) break;
          crashed = true;
          process.stderr.write(`bench: ${benchmark.id} failed on ${backend.name}: ${(error as Error).stack ?? String(error)}\n`);
        }
        if (interrupted) break;
        progress(`[${backend.name}] ${benchmark.id} done in ${seconds(performance.now() - start)}`);
      }
    } finally {
      await backend.close();
    }
    if (interrupted) break;
  }
  if (interrupted) return new Promise<number>(() => undefined); // the signal handler exits once cleaned up

  process.stdout.write(`\n${formatTable(results)}`);
  const details = formatDetails(results);
  if (details !== '') process.stdout.write(`\n${details}`);
  const file = writeResults(results);
  const missed = missedTargets(results);
  process.stdout.write(
    missed.length === 0
      ? `\nAll targets met (${results.filter((r) => r.pass !== null).length} with a target).\n`
      : `\nMISSED TARGETS (${missed.length}): ${missed.map(describeMiss).join('; ')}\n`,
  );
  process.stdout.write(`Results written to ${file} (${options.quick ? 'quick' : 'full'} run, ${seconds(performance.now() - started)}).\n`);
  return crashed ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
