/**
 * The services one exai process runs with, built once from the configuration
 * and handed to the transports (HTTP, CLI, later MCP). No globals.
 */
import { openCache } from '../cache/open.js';
import type { Cache } from '../cache/types.js';
import { CountingCache } from '../cache/counting.js';
import { PrometheusMetrics } from '../metrics/prometheus.js';
import type { Config } from '../config.js';
import { ConversationStore } from '../conversations/store.js';
import { migrate, migrationStatus } from '../db/migrate.js';
import { ExaiError } from '../errors.js';
import { openDatabase } from '../db/open.js';
import type { Database } from '../db/types.js';
import type { Logger } from '../logger.js';
import { ensureUser, findUserByHandle, type User } from '../users/users.js';
import { checkHealth, type HealthReport } from './health.js';
import { startPgliteMaintenance } from '../db/pglite-maintenance.js';
import { MemoryCallRecorder } from '../providers/call-recorder.js';
import { ProviderRouter } from '../providers/router.js';
import { RateLimits } from '../limits/rate-limits.js';
import { MetricsRecorder } from '../metrics/recorder.js';
import { metricsJobs } from '../metrics/metrics-jobs.js';
import { startJobRunner } from '../jobs/job-runner.js';
import type { JobRunner } from '../jobs/types.js';
import { DatabaseMetricsSink } from '../metrics/metrics-store.js';
import { CallMetrics } from '../metrics/call-metrics.js';
import { ModelRegistry } from '../providers/registry.js';
import { FileHandler } from '../files/file-handler.js';
import { ProviderFiles } from '../files/provider-files.js';
import { fileJobNames, fileJobs } from '../files/file-jobs.js';
import { openObjectStore, openReadTiers } from '../files/open-file-store.js';
import type { ObjectStore } from '../files/storage/object-store.js';
import type { Embedder } from '../search/embedder.js';
import { bulkLoadThreshold, ensureModelIndex, openEmbedder } from '../search/open-embedder.js';
import { searchJobNames, searchJobs } from '../search/search-jobs.js';
import { relatedMemory, type Memory } from '../search/memory.js';

export interface Services {
  config: Config;
  logger: Logger;
  db: Database;
  cache: Cache;
  conversations: ConversationStore;
  /** Model calls: registry, clients, fallbacks, limits. */
  router: ProviderRouter;
  /** Requests, tokens and calls in flight per key or user, and per provider; shared through Redis. */
  limits: RateLimits;
  /** The latest provider calls, in memory, for listmodels. */
  calls: MemoryCallRecorder;
  /** Buffers every tool and provider call and writes them to the metrics tables. */
  recorder: MetricsRecorder;
  /** Makes metric events of tool calls and the provider calls within them. */
  callMetrics: CallMetrics;
  /**
   * Prometheus metrics for GET /metrics, fed by `recorder`. Connect the job queues' depths with
   * `prometheus.setQueueDepthSource(async () => ({ [queue]: depth }))`.
   */
  prometheus: PrometheusMetrics;
  /** Users' files: uploads, reads through the cache tiers, deletes. */
  files: FileHandler;
  /** Kimi's and GLM's file ids for stored files, uploaded on demand. */
  providerFiles: ProviderFiles;
  /** Semantic search: the embedder, and a nudge for the indexing job after turns are stored. */
  search: {
    embedder: Embedder;
    notify(): void;
    memory(userId: string, question: string, options: { excludeConversationId?: string; tokenBudget: number }): Promise<Memory>;
  };
  /** The durable job runner, when this process runs jobs. */
  jobs: JobRunner | undefined;
  /** The user that local mode and stdio act as (EXAI_USER). */
  localUser: User;
  /** The id of the user with this handle; the local user when none is named. */
  userIdFor(handle: string | undefined): Promise<string>;
  startedAt: number;
  health(): Promise<HealthReport>;
  close(): Promise<void>;
}

export interface CreateServicesOptions {
  /** Apply pending migrations before anything else (serve and stdio do). */
  migrate: boolean;
  /** Run background jobs (roll-ups, retention, alerts) in this process; serving processes do, CLI commands do not. */
  jobs?: boolean;
}

export async function createServices(config: Config, logger: Logger, options: CreateServicesOptions): Promise<Services> {
  const db = await openDatabase(config, logger);
  let cache: Cache | undefined;
  let limits: RateLimits | undefined;
  let openRecorder: MetricsRecorder | undefined;
  let openJobs: JobRunner | undefined;
  let objectStore: ObjectStore | undefined;
  try {
    await db.ping();
    if (options.migrate) {
      await migrate(db, logger);
    } else {
      const status = await migrationStatus(db);
      if (status.pending.length > 0) {
        throw new ExaiError(
          'database_error',
          `The database schema is at version ${status.current}, but this exai needs version ${status.latest}. Run \`exai migrate\` first.`,
        );
      }
    }
    // Counts hits and misses for exai_cache_hits_total / exai_cache_misses_total.
    const countingCache = new CountingCache(await openCache(config, logger));
    cache = countingCache;
    const localUser = await ensureUser(db, config.localUser);
    const conversations = new ConversationStore(
      db,
      cache,
      {
        cacheTtlMs: config.cache.ttlMs,
        maxMessageBytes: config.limits.maxMessageBytes,
        maxThreadDepth: config.limits.maxThreadDepth,
      },
      logger,
    );
    const startedAt = Date.now();
    const openCacheRef = cache;
    // PGlite has no autovacuum: keep its statistics (and so its plans) in step with the tables.
    const maintenance = db.kind === 'pglite' ? startPgliteMaintenance(db, logger) : undefined;
    limits = await RateLimits.open({
      redisUrl: config.redis.url,
      commandTimeoutMs: config.redis.commandTimeoutMs,
      // Outside the cache's `<prefix>:` namespace, which the cache may clear after a Redis restart.
      keyPrefix: `${config.redis.keyPrefix}-rl:`,
      logger,
      // A slot held by a process that died frees itself once a call could no longer be running.
      callLeaseMs: config.providers.timeoutMs + 60_000,
    });
    const openLimits = limits;
    const calls = new MemoryCallRecorder();
    const recorder = new MetricsRecorder({ sink: new DatabaseMetricsSink(db), logger });
    openRecorder = recorder;
    // Prices come from the same registry the router is built from.
    const prices = ModelRegistry.fromConfig(config);
    const callMetrics = new CallMetrics(recorder, (model, input, output) => {
      const info = prices.find(model);
      return info === undefined ? null : ModelRegistry.cost(info, input, output);
    }, calls, (name) => prices.find(name)?.name ?? null);
    const router = ProviderRouter.fromConfig(config, callMetrics, async (provider) => {
      const permit = await openLimits.admitProvider(provider, config.providers.maxConcurrent);
      return () => permit.release();
    });
    const prometheus = new PrometheusMetrics({
      logger,
      models: router.registry.models.map((model) => model.name),
      recorder,
      cache: countingCache,
    });
    recorder.onEvent((event) => prometheus.observe(event));
    objectStore = openObjectStore(config.storage);
    const store = objectStore;
    const reader = await openReadTiers(config.storage, store);
    // Made below, once everything a job uses exists.
    const runner: { current?: JobRunner } = {};
    const files = new FileHandler({
      db,
      store,
      reader,
      logger,
      // Processed at once by this instance's runner; without one, the every-minute schedule catches up.
      onNewObject: () => void runner.current?.send(fileJobNames.process, {}).catch((error: unknown) => logger.warn({ err: error }, 'could not queue file processing')),
    });
    const providerFiles = ProviderFiles.fromConfig(config, { db, files, logger });
    const embedder = openEmbedder(config, callMetrics);
    // Several instances may start at once: IF NOT EXISTS, and a race lost to another is harmless.
    await ensureModelIndex(db, embedder, { deferAbove: bulkLoadThreshold })
      .then((state) => {
        if (state === 'deferred') logger.info({ model: embedder.model }, 'the embedding model\'s index will be built once its backlog is embedded (faster than inserting each vector into it)');
      })
      .catch((error: unknown) => logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'could not create the embedding model\'s index; search scans instead'));
    const search = {
      embedder,
      memory: (userId: string, question: string, options: { excludeConversationId?: string; tokenBudget: number }) =>
        relatedMemory({ db, embedder, logger }, userId, question, options),
      // Queued on this instance's runner; without one, the every-minute schedule catches up.
      notify: () => void runner.current?.send(searchJobNames.index, {}).catch((error: unknown) => logger.warn({ err: error }, 'could not queue search indexing')),
    };
    // Last: a job may start the moment the runner does, and everything it uses exists by now.
    const jobs = options.jobs === true
      ? await startJobRunner({
          db,
          logger,
          definitions: [...metricsJobs({ db, logger, alertRules: config.metrics.alertRules }), ...fileJobs({ db, store, reader, providerFiles, logger, onProcessed: search.notify }),
            ...searchJobs({ db, embedder, logger })],
        })
      : undefined;
    openJobs = jobs;
    runner.current = jobs;
    if (jobs !== undefined) prometheus.setQueueDepthSource(() => jobs.queueDepth());
    return {
      config,
      logger,
      db,
      cache,
      conversations,
      router,
      limits: openLimits,
      calls,
      recorder,
      callMetrics,
      prometheus,
      files,
      providerFiles,
      search,
      jobs,
      localUser,
      async userIdFor(handle) {
        if (handle === undefined || handle === localUser.handle) return localUser.id;
        const user = await findUserByHandle(db, handle);
        if (user === undefined) throw new ExaiError('not_found', `No user with handle ${JSON.stringify(handle)}.`);
        return user.id;
      },
      startedAt,
      health: () => checkHealth(db, openCacheRef, startedAt),
      async close() {
        // Jobs first (they finish or give up their current run), then the last calls are written.
        await jobs?.stop();
        await recorder.close();
        await maintenance?.stop();
        await openLimits.close();
        await openCacheRef.close();
        store.close?.();
        await db.close();
      },
    };
  } catch (error) {
    await openJobs?.stop().catch(() => undefined);
    await openRecorder?.close().catch(() => undefined);
    objectStore?.close?.();
    await limits?.close();
    await cache?.close();
    await db.close().catch(() => undefined);
    throw error;
  }
}
