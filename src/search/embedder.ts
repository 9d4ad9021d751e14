/**
 * What semantic search needs from an embedding model: a vector per text, all of
 * one length, stored with the model's name so vectors of different models are
 * never compared. Two kinds exist: the built-in lexical LocalHashEmbedder (no
 * network, no download) and ProviderEmbedder over an OpenAI-compatible
 * `POST /embeddings` (GLM `embedding-3`, Ollama, …).
 */
export interface Embedder {
  /** Model name stored with every vector, e.g. 'exai-local-hash-384' or the provider's model id. */
  readonly model: string;
  readonly dimensions: number;
  /** True for the built-in lexical embedder (no network). */
  readonly local: boolean;
  /**
   * One L2-normalised vector per text, in order. A text with nothing to embed
   * (empty, only whitespace or punctuation) may come back as the zero vector,
   * which has no direction: callers must not store it for search (cosine
   * distance to it is undefined) or must treat it as matching nothing.
   */
  embed(texts: readonly string[], options?: { signal?: AbortSignal }): Promise<number[][]>;
}
