/**
 * The embedder the configuration names (EXAI_EMBEDDING_MODEL on GLM or an
 * OpenAI-compatible endpoint), or the built-in lexical one when none is; and
 * the partial HNSW index each model's vectors need.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config.js';
import type { Database } from '../db/types.js';
import { ExaiError } from '../errors.js';
import type { CallRecorder } from '../providers/call-recorder.js';
import type { Embedder } from './embedder.js';
import { ProviderEmbedder } from './embedding-client.js';
import { LOCAL_EMBEDDING_MODEL, LocalHashEmbedder } from './local-embedder.js';

export function openEmbedder(config: Pick<Config, 'search' | 'providers'>, recorder?: CallRecorder): Embedder {
  const wanted = config.search.embedding;
  if (wanted === undefined) return new LocalHashEmbedder();
  const { providers } = config;
  const endpoint =
    wanted.provider === 'glm'
      ? { baseUrl: providers.glm.baseUrl, apiKey: providers.glm.apiKey }
      : { baseUrl: providers.openaiCompat.baseUrl, apiKey: providers.openaiCompat.apiKey };
  if (endpoint.baseUrl === undefined) throw new ExaiError('invalid_config', 'EXAI_EMBEDDING_PROVIDER openai-compat needs OPENAI_COMPAT_BASE_URL.');
  return new ProviderEmbedder({
    provider: wanted.provider,
    baseUrl: endpoint.baseUrl,
    apiKey: endpoint.apiKey,
    model: wanted.model,
    dimensions: wanted.dimensions,
    timeoutMs: providers.timeoutMs,
    ...(recorder === undefined ? {} : { recorder }),
  });
}

/**
 * Creates the model's partial HNSW indexes (messages and file chunks) on the cast to its dimension, once
 * (the migration made the built-in model's). Runs as the connecting role, which
 * owns the table; the model name was checked against a strict pattern.
 */
export async function ensureModelIndex(db: Database, embedder: Embedder): Promise<void> {
  if (embedder.model === LOCAL_EMBEDDING_MODEL) return;
  if (!/^[A-Za-z0-9._:/-]{1,200}$/.test(embedder.model) || !Number.isInteger(embedder.dimensions) || embedder.dimensions > 2000) {
    throw new ExaiError('invalid_config', `Cannot index embeddings of ${JSON.stringify(embedder.model)} with ${embedder.dimensions} dimensions: HNSW takes at most 2000.`);
  }
  const suffix = createHash('sha256').update(`${embedder.model}/${embedder.dimensions}`).digest('hex').slice(0, 12);
  for (const table of ['message_embeddings', 'file_chunk_embeddings']) {
    await db.query(
      `CREATE INDEX IF NOT EXISTS ${table}_${suffix}_hnsw ON exai.${table}
         USING hnsw ((embedding::vector(${embedder.dimensions})) vector_cosine_ops) WITH (m = 16, ef_construction = 64)
         WHERE model = '${embedder.model}' AND dimensions = ${embedder.dimensions}`,
    );
  }
}
