/**
 * "files": the unified file handler (src/files/file-handler.ts) moving a
 * 100 MiB file, beside the plainest filesystem code doing the same I/O, in the
 * same process and the same temporary folder (under os.tmpdir()).
 *
 * The handler is built as `exai serve` builds it for a local primary store: a
 * LocalObjectStore under the temporary folder, a TieredReader with the default
 * memory tier (EXAI_FILE_MEMORY_BYTES 64 MiB, EXAI_FILE_MEMORY_MAX_FILE 1 MiB)
 * and no disk tier (openReadTiers never puts a disk cache in front of a local
 * store). Only the local store is measured: an S3 store's throughput is the
 * network's and the service's, not the handler's. The database (the bench's
 * backend) only holds the metadata rows: a bucket lookup, one transaction per
 * upload, one SELECT per open.
 *
 * The source file is 100 MiB of random bytes, written in 1 MiB chunks (never
 * held whole in memory). MB here is MiB (2^20 bytes) throughout.
 *
 * 1. Upload — project: FileHandler.upload({ body: createReadStream(source) })
 *    into bucket user-uploads (1 GiB limit): hashing, the temporary file, the
 *    rename onto the content address, the rows. Every measured upload is a new
 *    object: before each one (untimed) the first 16 bytes of the source are
 *    overwritten with random ones, and the previous upload's rows and object
 *    are removed. Baseline: stream pipeline createReadStream(source) →
 *    createWriteStream(a new file in the same folder). Figure: MB/s, target
 *    ratio >= 0.5.
 * 2. Download — project: FileHandler.open(user, id) piped into a sink that
 *    counts and discards. Baseline: createReadStream(the object's file) into
 *    the same sink. Figure: MB/s, target ratio >= 0.5.
 * 3. Peak memory during 1 and 2: process.memoryUsage() every 10 ms while each
 *    operation runs; the figure is the largest growth of rss over its value
 *    right before the operation, across the runs (the baseline: the same for
 *    the raw side). Target: at most 64 MB (absolute). rss counts only pages
 *    the process had to take from the system: streaming in 64 KiB chunks
 *    reuses memory already resident, so a healthy path shows next to nothing,
 *    while a path that held the file (a readAll, a memory-tier fill of 100 MiB)
 *    would show more than 100 MB. The details add the JS side, heapUsed +
 *    external (arrayBuffers is a part of `external`, so it is not added
 *    again), which also counts chunks already dropped but not yet collected.
 *    `npm run bench` starts node without --expose-gc, so there is no full
 *    collection before an operation: growth is measured against whatever the
 *    process holds right before it. When gc() is exposed
 *    (`node --expose-gc dist/bench/run.js`), it runs before every operation.
 * 4. Dedup — project: the same 100 MiB uploaded again by the same user with
 *    its SHA-256 declared (as REST `sha256` and TUS metadata allow): the store
 *    finds the object and only hashes the body to check it, writing nothing;
 *    the handler must answer deduplicated: true with the same file (the bench
 *    throws otherwise). Baseline: one SHA-256 pass over the source
 *    (createReadStream → hash.update). Figure: ms, target ratio <= 1.5.
 *
 * Two more sides only explain the figures (details): "raw copy + SHA-256",
 * the copy of 1 while hashing (what LocalObjectStore.put does for a new
 * object), and for 4 the re-upload without a declared hash (the hash is known
 * only at the end, so the bytes are written to a temporary file and dropped)
 * beside its raw equivalent, copy + SHA-256 + unlink.
 *
 * Each operation runs 3 times (1 with --quick), after one unmeasured round of
 * every side in a full run; the order of the sides rotates each run (with two:
 * P B, B P, P B) and the figure is the median. The temporary folder is removed
 * at the end, on failure and on Ctrl-C too.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { asService } from '../src/db/session.js';
import { FileHandler, type UploadResult } from '../src/files/file-handler.js';
import { LocalObjectStore } from '../src/files/storage/local-object-store.js';
import { MemoryTier } from '../src/files/tiers/memory-tier.js';
import { TieredReader } from '../src/files/tiers/tiered-reader.js';
import { ensureUser } from '../src/users/users.js';
import { makeResult, type BenchContext, type BenchResult, type Benchmark } from './harness.js';

const MiB = 1024 * 1024;
const fileMiB = 100;
const fileBytes = fileMiB * MiB;
const throughputTarget = 0.5;
const memoryTargetMiB = 64;
const dedupTarget = 1.5;
const sampleEveryMs = 10;
/** The defaults of EXAI_FILE_MEMORY_BYTES and EXAI_FILE_MEMORY_MAX_FILE (src/config.ts). */
const memoryTierOptions = { maxBytes: 64 * MiB, maxEntryBytes: 1 * MiB };

// Measuring -------------------------------------------------------------------

interface MemoryGrowth {
  /** Peak rss − rss before, in bytes. */
  rss: number;
  /** Peak (heapUsed + external) − the same before, in bytes. */
  js: number;
  /** The peak rss itself, in bytes. */
  peakRss: number;
}

interface Measured {
  ms: number;
  growth: MemoryGrowth;
}

function collectIfExposed(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc === 'function') gc();
}

/** Times `op` while sampling memory every ~10 ms; untimed preparation belongs outside. */
async function measured(op: () => Promise<void>): Promise<Measured> {
  collectIfExposed();
  const before = process.memoryUsage();
  const beforeJs = before.heapUsed + before.external;
  let peakRss = before.rss;
  let peakJs = beforeJs;
  const sample = () => {
    const now = process.memoryUsage();
    peakRss = Math.max(peakRss, now.rss);
    peakJs = Math.max(peakJs, now.heapUsed + now.external);
  };
  const timer = setInterval(sample, sampleEveryMs);
  let ms: number;
  try {
    const start = performance.now();
    await op();
    ms = performance.now() - start;
  } finally {
    clearInterval(timer);
  }
  sample();
  return { ms, growth: { rss: peakRss - before.rss, js: peakJs - beforeJs, peakRss } };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const mbPerSecond = (ms: number) => fileMiB / (ms / 1000);
const inMiB = (bytes: number) => bytes / MiB;
const maxOf = (values: readonly number[]) => Math.max(...values);
const fixed = (value: number, digits = 1) => Number(value.toFixed(digits));

/** One side of a comparison: untimed preparation, the timed operation, untimed tidying. */
interface Side {
  before?: () => Promise<void>;
  op: (run: number) => Promise<void>;
  after?: () => Promise<void>;
}

/**
 * Runs every side `runs` times, rotating which goes first (with two sides:
 * P B, B P, P B), after one unmeasured round when `warmup`; returns each
 * side's measurements, in the order of `sides`.
 */
async function rotate(runs: number, warmup: boolean, sides: Side[]): Promise<Measured[][]> {
  const results: Measured[][] = sides.map(() => []);
  const runSide = async (index: number, run: number, into: Measured[] | undefined) => {
    const side = sides[index]!;
    await side.before?.();
    const m = await measured(() => side.op(run));
    into?.push(m);
    await side.after?.();
  };
  if (warmup) for (let index = 0; index < sides.length; index++) await runSide(index, -1, undefined);
  for (let run = 0; run < runs; run++) {
    for (let step = 0; step < sides.length; step++) {
      const index = (run + step) % sides.length;
      await runSide(index, run, results[index]);
    }
  }
  return results;
}

// Files -----------------------------------------------------------------------

/** Random bytes, 1 MiB at a time, written to `file`: never the whole file in memory. */
async function writeRandomFile(file: string, bytes: number): Promise<void> {
  async function* chunks() {
    for (let written = 0; written < bytes; written += MiB) yield randomBytes(Math.min(MiB, bytes - written));
  }
  await pipeline(Readable.from(chunks()), createWriteStream(file));
}

/** Overwrites the file's first 16 bytes with random ones, so its next upload is a new object. */
async function restamp(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.write(randomBytes(16), 0, 16, 0);
  } finally {
    await handle.close();
  }
}

/** A sink that counts what it receives and keeps none of it. */
function discardingSink(): { sink: Writable; bytes: () => number } {
  let count = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      count += chunk.length;
      callback();
    },
  });
  return { sink, bytes: () => count };
}

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The raw equivalent of LocalObjectStore.put: copy `source` to `target` while hashing it; returns the hex digest. */
async function hashWhileCopying(source: string, target: string): Promise<string> {
  const hash = createHash('sha256');
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  await pipeline(createReadStream(source), hashing, createWriteStream(target));
  return hash.digest('hex');
}

// The benchmark -----------------------------------------------------------------

async function measureFiles(context: BenchContext, folder: string): Promise<BenchResult[]> {
  const { backend, quick, progress } = context;
  const { db } = backend;
  const runs = quick ? 1 : 3;
  const warmup = !quick;
  const source = path.join(folder, 'source.bin');
  const copy = path.join(folder, 'copy.bin');
  const store = new LocalObjectStore(path.join(folder, 'objects'));
  const reader = new TieredReader({ memory: new MemoryTier(memoryTierOptions), disk: undefined, primary: store });
  const handler = new FileHandler({ db, store, reader, logger: context.logger });
  const user = await ensureUser(db, `bench-files-${randomBytes(4).toString('hex')}`);
  const removeCopy = () => rm(copy, { force: true });

  progress(`writing a ${fileMiB} MiB random file`);
  await writeRandomFile(source, fileBytes);

  // 1. Upload -------------------------------------------------------------------
  progress(`upload ${fileMiB} MiB, ${runs} run(s) per side${warmup ? ' after a warm-up' : ''}`);
  let current: UploadResult | undefined;
  /** Untimed: an upload's rows and object go, so the next upload is a new object again. */
  const removeUpload = async (upload: UploadResult) => {
    await asService(db, async (tx) => {
      await tx.query('DELETE FROM exai.file_metadata WHERE id = $1', [upload.file.id]);
      await tx.query('DELETE FROM exai.file_objects WHERE storage_key = $1', [upload.file.storageKey]);
    });
    await store.delete(upload.file.storageKey);
    await reader.forget(upload.file.storageKey);
  };
  const [uploadProject, uploadBaseline, uploadHashCopy] = await rotate(runs, warmup, [
    {
      before: async () => {
        if (current !== undefined) await removeUpload(current);
        current = undefined;
        await restamp(source);
      },
      op: async () => {
        const uploaded = await handler.upload({ userId: user.id, name: 'bench-100mib.bin', body: createReadStream(source) });
        if (uploaded.deduplicated || uploaded.objectExisted || uploaded.file.size !== fileBytes) {
          throw new Error(
            `files bench: a fresh upload came back deduplicated=${uploaded.deduplicated}, objectExisted=${uploaded.objectExisted}, size ${uploaded.file.size}`,
          );
        }
        current = uploaded;
      },
    },
    { op: () => pipeline(createReadStream(source), createWriteStream(copy)), after: removeCopy },
    { op: async () => void (await hashWhileCopying(source, copy)), after: removeCopy },
  ]);
  const file = current;
  if (file === undefined) throw new Error('files bench: no upload to read back');
  const objectPath = store.localPath(file.file.storageKey);
  const sourceSha = await sha256OfFile(source);
  if (file.file.sha256 !== sourceSha) throw new Error(`files bench: the upload recorded sha256 ${file.file.sha256}, the source has ${sourceSha}`);

  // 2. Download -----------------------------------------------------------------
  progress(`download ${fileMiB} MiB, ${runs} run(s) per side`);
  const tiers = new Set<string>();
  const [downloadProject, downloadBaseline] = await rotate(runs, warmup, [
    {
      op: async () => {
        const opened = await handler.open(user.id, file.file.id);
        const { sink, bytes } = discardingSink();
        await pipeline(opened.stream, sink);
        if (bytes() !== fileBytes) throw new Error(`files bench: open() gave ${bytes()} bytes, not ${fileBytes}`);
        tiers.add(opened.tier);
      },
    },
    {
      op: async () => {
        const { sink, bytes } = discardingSink();
        await pipeline(createReadStream(objectPath), sink);
        if (bytes() !== fileBytes) throw new Error(`files bench: the object file gave ${bytes()} bytes, not ${fileBytes}`);
      },
    },
  ]);

  // 4. Dedup ----------------------------------------------------------------------
  progress(`re-upload of the same ${fileMiB} MiB (dedup), ${runs} run(s) per side`);
  const [dedupProject, dedupBaseline, dedupPut, dedupHashCopy] = await rotate(runs, warmup, [
    {
      op: async () => {
        const again = await handler.upload({ userId: user.id, name: 'bench-100mib-again.bin', body: createReadStream(source), sha256: sourceSha });
        if (again.deduplicated !== true || again.file.id !== file.file.id) {
          throw new Error(`files bench: re-uploading the same bytes gave deduplicated=${again.deduplicated} (file ${again.file.id}, expected ${file.file.id})`);
        }
      },
    },
    {
      op: async () => {
        if ((await sha256OfFile(source)) !== sourceSha) throw new Error('files bench: the hash pass disagrees with itself');
      },
    },
    // The two sides below only explain the figure (details): a re-upload without a declared hash, and its raw equivalent.
    {
      op: async () => {
        const again = await handler.upload({ userId: user.id, name: 'bench-100mib-undeclared.bin', body: createReadStream(source) });
        if (again.deduplicated !== true) throw new Error('files bench: a re-upload without a declared hash was not deduplicated');
      },
    },
    {
      op: async () => {
        await hashWhileCopying(source, copy);
        await removeCopy();
      },
    },
  ]);
  await removeUpload(file);

  // Figures -----------------------------------------------------------------------
  const msOf = (list: Measured[]) => list.map((m) => m.ms);
  const medianMs = (list: Measured[]) => median(msOf(list));
  const rssPeak = (list: Measured[]) => inMiB(maxOf(list.map((m) => m.growth.rss)));
  const jsPeak = (list: Measured[]) => inMiB(maxOf(list.map((m) => m.growth.js)));
  const absolutePeak = (list: Measured[]) => inMiB(maxOf(list.map((m) => m.growth.peakRss)));
  const runsNote = `${runs} rotating run(s) per side${warmup ? ' after a warm-up round' : ''}, median`;
  const gcNote = typeof (globalThis as { gc?: unknown }).gc === 'function' ? 'gc() before each operation' : 'no gc() (node without --expose-gc)';
  const runsDetail = (list: Measured[]) => msOf(list).map((v) => v.toFixed(0)).join(' / ');

  const memoryFigure = (label: string, project: Measured[], baseline: Measured[], baselineNote: string) =>
    makeResult({
      name: `files ${label} peak memory`,
      backend: backend.name,
      value: rssPeak(project),
      unit: 'MB',
      // A floor of 0.01 MB: a raw side whose rss did not move at all would make the (informational) ratio infinite.
      baseline: Math.max(0.01, rssPeak(baseline)),
      better: 'lower',
      target: memoryTargetMiB,
      targetOn: 'value',
      notes:
        `peak growth of rss over its value right before each ${label} of ${fileMiB} MiB, sampled every ${sampleEveryMs} ms, ` +
        `largest over the runs; baseline: the same for ${baselineNote}; ${gcNote}; MB = MiB`,
      details: {
        'project rss growth per run MB': project.map((m) => inMiB(m.growth.rss).toFixed(1)).join(' / '),
        'baseline rss growth per run MB': baseline.map((m) => inMiB(m.growth.rss).toFixed(1)).join(' / '),
        'project heapUsed+external growth MB': fixed(jsPeak(project), 2),
        'baseline heapUsed+external growth MB': fixed(jsPeak(baseline), 2),
        'project peak rss MB': fixed(absolutePeak(project)),
      },
    });

  return [
    makeResult({
      name: `files upload ${fileMiB} MiB`,
      backend: backend.name,
      value: mbPerSecond(medianMs(uploadProject!)),
      unit: 'MB/s',
      baseline: mbPerSecond(medianMs(uploadBaseline!)),
      better: 'higher',
      target: throughputTarget,
      notes:
        `project: FileHandler.upload of createReadStream(source) into bucket user-uploads, a new object each run (LocalObjectStore: ` +
        `SHA-256 while writing a temporary file, rename, then the rows); baseline: pipeline createReadStream → createWriteStream ` +
        `in the same folder; ${runsNote}; MB = MiB`,
      details: {
        'project runs ms': runsDetail(uploadProject!),
        'baseline runs ms': runsDetail(uploadBaseline!),
        'raw copy + SHA-256 (what put does) MB/s': fixed(mbPerSecond(medianMs(uploadHashCopy!))),
        'project / raw copy + SHA-256': fixed(medianMs(uploadHashCopy!) / medianMs(uploadProject!), 3),
      },
    }),
    makeResult({
      name: `files download ${fileMiB} MiB`,
      backend: backend.name,
      value: mbPerSecond(medianMs(downloadProject!)),
      unit: 'MB/s',
      baseline: mbPerSecond(medianMs(downloadBaseline!)),
      better: 'higher',
      target: throughputTarget,
      notes:
        `project: FileHandler.open (tier ${[...tiers].join(', ')}) piped into a discarding sink; baseline: createReadStream of ` +
        `the object's file into the same sink; ${runsNote}; MB = MiB`,
      details: { 'project runs ms': runsDetail(downloadProject!), 'baseline runs ms': runsDetail(downloadBaseline!), tier: [...tiers].join(', ') },
    }),
    memoryFigure('upload', uploadProject!, uploadBaseline!, 'the raw copy'),
    memoryFigure('download', downloadProject!, downloadBaseline!, 'the raw read'),
    makeResult({
      name: `files dedup re-upload ${fileMiB} MiB`,
      backend: backend.name,
      value: medianMs(dedupProject!),
      unit: 'ms',
      baseline: medianMs(dedupBaseline!),
      better: 'lower',
      target: dedupTarget,
      notes:
        `project: FileHandler.upload of the same bytes by the same user again with their SHA-256 declared (answered deduplicated: true, same file id); ` +
        `baseline: one SHA-256 pass over the source (createReadStream → hash.update); ${runsNote}`,
      details: {
        'project runs ms': runsDetail(dedupProject!),
        'baseline runs ms': runsDetail(dedupBaseline!),
        'undeclared re-upload ms': fixed(medianMs(dedupPut!)),
        'raw copy + SHA-256 + unlink ms': fixed(medianMs(dedupHashCopy!)),
        'project rss growth MB': fixed(rssPeak(dedupProject!), 2),
        'project heapUsed+external growth MB': fixed(jsPeak(dedupProject!), 2),
      },
    }),
  ];
}

export const filesBenchmark: Benchmark = {
  id: 'files',
  description: `file handler: ${fileMiB} MiB upload, download, peak memory and dedup re-upload vs raw fs`,
  async run(context) {
    const folder = await mkdtemp(path.join(os.tmpdir(), 'exai-bench-files-'));
    const cleanup = () => rm(folder, { recursive: true, force: true });
    const unregister = context.registerCleanup?.(cleanup);
    try {
      return await measureFiles(context, folder);
    } finally {
      await cleanup().catch((error: Error) => process.stderr.write(`bench: could not remove ${folder}: ${error.message}\n`));
      unregister?.();
    }
  },
};
