/**
 * Hybrid search over a user's conversations: PostgreSQL full-text search (the
 * tsvector of messages and of the chunks of files linked to the conversations,
 * any of the query's words, ranked by how many and how close) and vector
 * similarity (the embedder's vectors, through the model's HNSW indexes) fused
 * by reciprocal rank fusion, one result per conversation (its best message or
 * file passage), with the matching words highlighted. Runs
 * as the user: row-level security decides what exists. When the query cannot
 * be embedded (the provider is down) or no vectors exist yet, full text alone
 * answers, and the result says so.
 */
import { asService, asUser } from '../db/session.js';
import type { Database, Queryable } from '../db/types.js';
import { ExaiError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Embedder } from './embedder.js';

export const maxQueryChars = 1_000;

export interface SearchInput {
  query: string;
  limit?: number;
  /** Minimum cosine similarity for a vector match to count (0-1). */
  threshold?: number;
  /** Desired recall of the vector search, 0.5-1: sets hnsw.ef_search. */
  recall?: number;
  from?: Date;
  to?: Date;
  tool?: string;
  model?: string;
  conversationId?: string;
  /** Which signals to use; `hybrid` (both, fused) unless set. The others exist to measure each alone. */
  signals?: 'hybrid' | 'text' | 'vector';
  /** Leave this conversation out (the one being continued). */
  excludeConversationId?: string;
  /** Add each result's best message with its question or answer (2,000 characters of each), or its file passage (4,000), for prompts. */
  withContent?: boolean;
}

/** The filters of a search. */
type SearchFilters = Pick<SearchInput, 'from' | 'to' | 'tool' | 'model' | 'conversationId' | 'excludeConversationId'>;

export interface SearchResult {
  continuation_id: string;
  title: string | null;
  snippet: string;
  score: number;
  /** Which signals found it. */
  matched: ('text' | 'meaning')[];
  updated_at: string;
  /** When the best match is a passage of a file linked to the conversation: the file's name. */
  file?: string;
  /** With `withContent`: the best matching message and its other half. */
  content?: string;
}

export interface SearchAnswer {
  results: SearchResult[];
  /** `hybrid`, `full_text` when vectors could not be used (see `note`), `vector` for similar conversations. */
  mode: 'hybrid' | 'full_text' | 'vector';
  /** What the embedder does: `lexical` for the built-in one. */
  embedder: { model: string; kind: 'lexical' | 'semantic' };
  note?: string;
}

/**
 * Words too common to tell messages apart. The full-text side ORs the query's
 * words; without this, "the" or "to" would match nearly every message (and
 * keep PostgreSQL from using the GIN index), and outrank the rare word that matters.
 */
const stopwords = new Set(
  ('a an and are as at be but by can could did do does for from had has have how i if in into is it its me my of on or our so ' +
    'should that the their them then there these they this to was we were what when where which who why will with would you your ' +
    'der die das und ist ein eine zu den mit von nicht wie')
    .split(' '),
);

/** The query's words without stopwords (all of them when nothing else is left), for the full-text side. */
export function textQuery(query: string): string {
  const words = query.match(/[\p{L}\p{N}\p{Extended_Pictographic}]+/gu) ?? [];
  const kept = words.filter((word) => !stopwords.has(word.toLowerCase()));
  return (kept.length > 0 ? kept : words).join(' ');
}

/** RRF's constant for messages (which one a conversation's snippet shows): deep ranks still count a little (Cormack et al. use 60). */
const rrfK = 60;
/**
 * RRF's constant for conversations, each list ranking a conversation by its best hit: the lists are
 * short (at most 100 hits, fewer threads) and their top matters most. On the labelled set (`npm run
 * bench -- --only=search-quality`) hybrid recall@5 / MRR was 0.929 / 0.840 with 10, 0.929 / 0.844
 * with 5, 0.906 / 0.836 with 20 and 0.894 / 0.833 with the textbook 60.
 */
const threadRrfK = 10;
/** How many candidates each signal contributes before fusion. */
const candidates = 100;
/**
 * Up to this many vectors in a search's scope (the user's, within its filters), the search compares
 * them all instead of walking the model's HNSW index. The index holds every user's vectors, and under
 * row-level security and filters its walk skips the others' rows; it gives up after
 * hnsw.max_scan_tuples (20,000) of them, so a user with a small share of a big index got a few
 * results or none, slowly. Comparing 5,000 vectors of 1,024 dimensions takes ~20 ms; a larger scope
 * is a large enough share for the walk.
 */
const exactVectorScanUpTo = 5_000;

/** What the search needs; `exactScanUpTo` replaces exactVectorScanUpTo (tests walk the index with 0). */
export interface SearchDeps {
  db: Database;
  embedder: Embedder;
  logger: Logger;
  exactScanUpTo?: number;
}
/**
 * How many rows of a full-text tier the cheap rank (ts_rank) passes on to the fine one
 * (ts_rank_cd). At 100,000 messages (`npm run bench -- --only=search`) a query's strong tier held
 * ~2,400 rows at the median and ~6,100 at p95; 95% of the top 10 of the two-step order were those
 * of ranking every row by ts_rank_cd, at half the p95 time. A tier of up to 1,000 rows is ranked
 * exactly.
 */
const preselected = 1_000;

export function checkSearchInput(
  input: SearchInput,
  kind: 'lexical' | 'semantic' = 'lexical',
): Required<Pick<SearchInput, 'limit' | 'threshold'>> & { query: string; efSearch: number } {
  const query = typeof input.query === 'string' ? input.query.trim() : '';
  if (query === '') throw new ExaiError('invalid_argument', 'The search query is empty; say what to look for, e.g. "auth refactor token expiry".');
  if (query.length > maxQueryChars) throw new ExaiError('invalid_argument', `The search query has ${query.length} characters; the limit is ${maxQueryChars}. Search for the key words instead.`);
  const limit = input.limit ?? 10;
  if (!Number.isInteger(limit) || limit < 1 || limit > 50) throw new ExaiError('invalid_argument', 'limit must be a whole number from 1 to 50.');
  const threshold = input.threshold ?? 0.2;
  if (!(threshold >= 0 && threshold <= 1)) throw new ExaiError('invalid_argument', 'threshold must be between 0 and 1 (cosine similarity).');
  const recall = input.recall ?? 0.95;
  if (!(recall >= 0.5 && recall <= 1)) throw new ExaiError('invalid_argument', 'recall must be between 0.5 and 1.');
  if (input.from !== undefined && input.to !== undefined && input.from > input.to) throw new ExaiError('invalid_argument', '"from" must not be after "to".');
  return { query, limit, threshold, efSearch: efSearchFor(recall, limit, kind) };
}

/**
 * hnsw.ef_search from the recall asked for: the candidate list HNSW keeps while
 * it searches. At least the number of candidates wanted; more for higher recall,
 * as measured at 100,000 vectors on PostgreSQL (`npm run bench -- --only=search`):
 * semantic (provider-like) vectors reach recall@10 0.92 at 40, 0.97 at 100 and
 * 0.99 at 1000; the built-in lexical vectors 0.65 at 100, 0.73 at 200, 0.81 at
 * 400 and 0.90 at 1000, so for them the steps trade latency for what recall
 * there is (full text finds their words anyway).
 */
export function efSearchFor(recall: number, limit: number, kind: 'lexical' | 'semantic' = 'lexical'): number {
  const base =
    kind === 'semantic'
      ? recall >= 0.99 ? 1000 : recall >= 0.95 ? 100 : 40
      : recall >= 0.99 ? 400 : recall >= 0.95 ? 200 : recall >= 0.9 ? 100 : 40;
  return Math.max(base, limit * 4, candidates);
}

/** A statement's parameter list: `add` appends a value and returns its placeholder. */
function sqlParameters(): { params: unknown[]; add: (value: unknown) => string } {
  const params: unknown[] = [];
  return {
    params,
    add: (value) => {
      params.push(value);
      return `$${params.length}`;
    },
  };
}

/** Whether the chunk's bytes are a live file linked to a conversation, with `where` narrowing file and link. */
const linkedFileCheck = (chunk: string, where: string) =>
  `EXISTS (SELECT 1 FROM exai.file_metadata fm JOIN exai.conversation_files cf ON cf.file_id = fm.id
            WHERE fm.storage_key = ${chunk}.storage_key AND fm.deleted_at IS NULL ${where})`;

/** The filters as `AND …` over a candidate's conversation and time (a message's creation, a file's link to the thread), their values added through `add`. */
function filterScope(input: SearchFilters, add: (value: unknown) => string): (conversation: string, time: string) => string {
  const filter = {
    from: input.from === undefined ? undefined : add(input.from),
    to: input.to === undefined ? undefined : add(input.to),
    tool: input.tool === undefined ? undefined : add(input.tool),
    model: input.model === undefined ? undefined : add(input.model),
    conversation: input.conversationId === undefined ? undefined : add(input.conversationId),
    exclude: input.excludeConversationId === undefined ? undefined : add(input.excludeConversationId),
  };
  return (conversation, time) =>
    [
      filter.from === undefined ? '' : `${time} >= ${filter.from}`,
      filter.to === undefined ? '' : `${time} <= ${filter.to}`,
      filter.tool === undefined ? '' : `${conversation} IN (SELECT id FROM exai.conversations WHERE tool_name = ${filter.tool})`,
      filter.model === undefined ? '' : `${conversation} IN (SELECT conversation_id FROM exai.messages WHERE model = ${filter.model})`,
      filter.conversation === undefined ? '' : `${conversation} = ${filter.conversation}`,
      filter.exclude === undefined ? '' : `${conversation} <> ${filter.exclude}`,
    ]
      .filter((part) => part !== '')
      .map((part) => `AND ${part}`)
      .join(' ');
}

/**
 * The full-text candidates, found as the service with an explicit owner filter: under row-level
 * security PostgreSQL will not use the GIN index for `@@` (not a leakproof operator, so it may not
 * run before the policy's check) and matches every message of the user in turn (0.3 s and more at
 * 100,000 messages). Only ids and ranks come back; the search reads the rows as the user, so
 * row-level security still decides what is shown.
 *
 * Two tiers: any one of the query's words can match a large part of a big history, so the strong
 * tier is what matches at least two of them, ranked; only when it has fewer than the candidates
 * wanted are single-word matches ranked after it (a one-time filter: otherwise never scanned).
 * Each tier is ranked in two steps (see `preselected`).
 */
async function textCandidates(db: Database, userId: string, input: SearchInput, text: string): Promise<TextCandidate[]> {
  const { params, add } = sqlParameters();
  const scope = filterScope(input, add);
  const owner = add(userId);
  const textParam = add(text);
  const linkedFile = (chunk: string) => linkedFileCheck(chunk, `AND fm.owner_id = ${owner} ${scope('cf.conversation_id', 'cf.linked_at')}`);
  // ts_rank_cd (which rewards the words standing close) costs ~20 µs a row and a tier can hold
  // thousands of rows in a big history; ts_rank, five times cheaper, picks the rows it orders.
  const ranked = (tier: number, alias: string, columns: string, from: string, match: string, order: string) => `
      SELECT ${columns}, ${tier} AS tier, ts_rank_cd(${alias}.content_tsv, q.tsq, 1) AS text_score
        FROM (SELECT ${alias}.* FROM ${from}, q
               WHERE ${match}
               ORDER BY ts_rank(${alias}.content_tsv, q.tsq, 1) DESC${order}
               LIMIT ${preselected}) ${alias}, q
       ORDER BY text_score DESC${order}
       LIMIT ${candidates}`;
  const tiered = (name: string, alias: string, columns: string, from: string, where: string, order: string) => `
    ${name}_strong AS (${ranked(0, alias, columns, from, `${alias}.content_tsv @@ q.strong ${where}`, order)}),
    ${name}_weak AS (${ranked(
      1,
      alias,
      columns,
      from,
      `${alias}.content_tsv @@ q.tsq AND NOT (${alias}.content_tsv @@ q.strong) ${where} AND (SELECT count(*) FROM ${name}_strong) < ${candidates}`,
      order,
    )})`;
  const sql = `
    WITH words AS (
      -- The query's 12 longest distinct words (long words tend to be the rare ones) as tsquery
      -- lexemes, for the pairs of the strong tier.
      SELECT quote_literal(w) AS lexeme, row_number() OVER () AS i
        FROM (SELECT w FROM unnest(tsvector_to_array(to_tsvector('simple', ${textParam}))) AS w
               WHERE w !~ '[\\\\'']' ORDER BY length(w) DESC, w LIMIT 12) listed),
    q AS (
      SELECT any_word.tsq, CASE WHEN pairs.text IS NULL THEN any_word.tsq ELSE to_tsquery('simple', pairs.text) END AS strong
        FROM (SELECT ${anyWordQuery(textParam)} AS tsq) any_word,
             (SELECT string_agg('(' || a.lexeme || ' & ' || b.lexeme || ')', ' | ') AS text FROM words a JOIN words b ON a.i < b.i) pairs),
    ${tiered('messages', 'm', 'm.id AS message_id, NULL::text AS storage_key, NULL::integer AS chunk_index', 'exai.messages m', `AND m.owner_id = ${owner} ${scope('m.conversation_id', 'm.created_at')}`, ', m.created_at DESC')},
    ${tiered('chunks', 'c', 'NULL::uuid AS message_id, c.storage_key, c.chunk_index', 'exai.file_chunks c', `AND ${linkedFile('c')}`, '')}
    SELECT 'message' AS kind, * FROM messages_strong UNION ALL SELECT 'message', * FROM messages_weak
    UNION ALL SELECT 'chunk', * FROM chunks_strong UNION ALL SELECT 'chunk', * FROM chunks_weak`;
  const found = await asService(db, (tx) => tx.query<TextCandidate>(sql, params));
  return found.rows.map((row) => ({ ...row, text_score: Number(row.text_score) }));
}

interface TextCandidate {
  kind: 'message' | 'chunk';
  message_id: string | null;
  storage_key: string | null;
  chunk_index: number | null;
  tier: number;
  text_score: number;
}

/** A tsquery matching any of the words in the text parameter. */
const anyWordQuery = (textParam: string) => `to_tsquery('simple', replace(plainto_tsquery('simple', ${textParam})::text, ' & ', ' | '))`;

export async function searchConversations(
  deps: SearchDeps,
  userId: string,
  input: SearchInput,
): Promise<SearchAnswer> {
  const { embedder } = deps;
  const about = describeEmbedder(embedder);
  const checked = checkSearchInput(input, about.kind);
  let vector: number[] | undefined;
  let note: string | undefined;
  const signals = input.signals ?? 'hybrid';
  try {
    const [embedded] = signals === 'text' ? [] : await embedder.embed([checked.query]);
    if (embedded !== undefined && embedded.length === embedder.dimensions && embedded.some((value) => value !== 0)) vector = embedded;
  } catch (error) {
    deps.logger.warn({ err: error instanceof Error ? error.message : String(error), model: embedder.model }, 'search query could not be embedded; full text only');
    note = `The embedding model ${embedder.model} could not be reached, so these results come from full-text search alone.`;
  }
  const { params, add } = sqlParameters();
  const scope = filterScope(input, add);
  const messageScope = scope('m.conversation_id', 'm.created_at');
  const linkScope = scope('cf.conversation_id', 'cf.linked_at');
  // A file chunk counts for each of the user's conversations its file is linked to (live files only); row-level security picks the user's.
  const linkedFile = (chunk: string) => linkedFileCheck(chunk, linkScope);
  const toThreads = (chunks: string, score: string) =>
    `SELECT ch.storage_key || '#' || ch.chunk_index || '@' || cf.conversation_id AS key, cf.conversation_id, ch.content,
            NULL::integer AS seq, 'file'::text AS role, fm.file_path, ${score}, cf.linked_at AS at
       FROM ${chunks} ch JOIN exai.file_metadata fm ON fm.storage_key = ch.storage_key AND fm.deleted_at IS NULL
       JOIN exai.conversation_files cf ON cf.file_id = fm.id
      WHERE true ${linkScope}`;
  const dims = embedder.dimensions;
  const userFiles = `SELECT DISTINCT fm.storage_key FROM exai.file_metadata fm JOIN exai.conversation_files cf ON cf.file_id = fm.id
                      WHERE fm.deleted_at IS NULL ${linkScope}`;
  const vectorCtes = (exact: { messages: boolean; chunks: boolean }): string => {
    if (vector === undefined) return noVectorCte;
    const queryVector = add(`[${vector.join(',')}]`);
    const model = add(embedder.model);
    const distance = (alias: string) => `${alias}.embedding::vector(${dims}) <=> ${queryVector}::vector(${dims})`;
    return `vec_messages AS (
           SELECT e.message_id::text AS key, m.conversation_id, m.content, m.seq, m.role, NULL::text AS file_path, ${distance('e')} AS distance, m.created_at AS at
             FROM exai.message_embeddings e JOIN exai.messages m ON m.id = e.message_id
            WHERE e.model = ${model} AND e.dimensions = ${dims} AND e.embedding IS NOT NULL ${exact.messages ? `AND e.owner_id = ${add(userId)}` : ''} ${messageScope}
            ORDER BY ${nearestFirst(distance('e'), exact.messages)}
            LIMIT ${candidates}),
         vec_chunks AS (
           SELECT c.storage_key, c.chunk_index, c.content, ${distance('fe')} AS distance
             FROM exai.file_chunk_embeddings fe JOIN exai.file_chunks c ON c.storage_key = fe.storage_key AND c.chunk_index = fe.chunk_index
            WHERE fe.model = ${model} AND fe.dimensions = ${dims} AND fe.embedding IS NOT NULL
              AND ${exact.chunks ? `fe.storage_key IN (${userFiles})` : linkedFile('fe')}
            ORDER BY ${nearestFirst(distance('fe'), exact.chunks)}
            LIMIT ${candidates}),
         vec AS (
           SELECT key, conversation_id, content, seq, role, file_path, row_number() OVER (ORDER BY distance, at DESC) AS rank, 1 - distance AS similarity
             FROM (SELECT * FROM vec_messages UNION ALL ${toThreads('vec_chunks', 'ch.distance')}) hits
            ORDER BY distance, at DESC
            LIMIT ${candidates})`;
  };
  const noVectorCte =
    'vec AS (SELECT NULL::text AS key, NULL::uuid AS conversation_id, NULL::text AS content, NULL::integer AS seq, NULL::text AS role, NULL::text AS file_path, NULL::bigint AS rank, NULL::double precision AS similarity WHERE false)';
  // For prompts: the best message with its other half (the question before an answer, the answer after a question), or the file's passage.
  const pairSql = `CASE WHEN b.file_path IS NOT NULL THEN 'file ' || b.file_path || E':\n' || left(b.content, 4000) ELSE
      (SELECT string_agg(p.role || ': ' || left(p.content, 2000), E'\n' ORDER BY p.seq) FROM exai.messages p
        WHERE p.conversation_id = b.conversation_id
          AND p.seq BETWEEN b.seq - (CASE WHEN b.role = 'assistant' THEN 1 ELSE 0 END) AND b.seq + (CASE WHEN b.role = 'user' THEN 1 ELSE 0 END)) END`;
  const thresholdParam = add(checked.threshold);
  const limitParam = add(checked.limit);
  const textQueryText = textQuery(checked.query);
  const textParam = add(textQueryText);
  const hits = signals === 'vector' ? [] : await textCandidates(deps.db, userId, input, textQueryText);
  const hitsParam = add(JSON.stringify(hits));
  const statement = (exact: { messages: boolean; chunks: boolean }) => `
    WITH q AS (SELECT ${anyWordQuery(textParam)} AS tsq),
    text_hits AS (
      SELECT * FROM json_to_recordset(${hitsParam}::json)
               AS r(kind text, message_id uuid, storage_key text, chunk_index integer, tier integer, text_score double precision)),
    -- Read as the user: row-level security decides again what the candidates may show. The keys
    -- come typed: a cast in the join (key::uuid) is not leakproof, so under row-level security
    -- PostgreSQL would not look the rows up by index but scan all of the user's messages.
    fts_messages AS (
      SELECT m.id::text AS key, m.conversation_id, m.content, m.seq, m.role, NULL::text AS file_path, r.tier, r.text_score, m.created_at AS at
        FROM text_hits r JOIN exai.messages m ON m.id = r.message_id
       WHERE r.kind = 'message'),
    fts_chunks AS (
      SELECT c.storage_key, c.chunk_index, c.content, r.tier, r.text_score
        FROM text_hits r JOIN exai.file_chunks c ON c.storage_key = r.storage_key AND c.chunk_index = r.chunk_index
       WHERE r.kind = 'chunk'),
    fts AS (
      SELECT key, conversation_id, content, seq, role, file_path, row_number() OVER (ORDER BY tier, text_score DESC, at DESC) AS rank
        FROM (SELECT * FROM fts_messages UNION ALL ${toThreads('fts_chunks', 'ch.tier, ch.text_score')}) hits
       ORDER BY tier, text_score DESC, at DESC
       LIMIT ${candidates}),
    ${vectorCtes(exact)},
    fused AS (
      SELECT coalesce(f.key, v.key) AS key, coalesce(f.conversation_id, v.conversation_id) AS conversation_id,
             coalesce(f.content, v.content) AS content, coalesce(f.seq, v.seq) AS seq, coalesce(f.role, v.role) AS role,
             coalesce(f.file_path, v.file_path) AS file_path,
             coalesce(1.0 / (${rrfK} + f.rank), 0) + coalesce(1.0 / (${rrfK} + v.rank), 0) AS score,
             f.key IS NOT NULL AS by_text,
             v.key IS NOT NULL AND v.similarity >= ${thresholdParam} AS by_meaning
        FROM fts f FULL JOIN vec v ON v.key = f.key
       WHERE f.key IS NOT NULL OR v.similarity >= ${thresholdParam}),
    text_threads AS (
      SELECT conversation_id, row_number() OVER (ORDER BY min(rank)) AS rank FROM fts GROUP BY conversation_id),
    meaning_threads AS (
      SELECT conversation_id, row_number() OVER (ORDER BY min(rank)) AS rank FROM vec GROUP BY conversation_id),
    -- The snippet's message: the conversation's best by the fused message ranks.
    best_message AS (
      SELECT DISTINCT ON (conversation_id) conversation_id, content, seq, role, file_path
        FROM fused
       ORDER BY conversation_id, score DESC),
    -- Fused again over conversations, each list ranking a conversation by its best hit, so a thread
    -- with many weak matches does not outrank one with a single strong one.
    best AS (
      SELECT m.*, coalesce(1.0 / (${threadRrfK} + t.rank), 0) + coalesce(1.0 / (${threadRrfK} + v.rank), 0) AS score,
             (SELECT bool_or(by_text) FROM fused f WHERE f.conversation_id = m.conversation_id) AS by_text,
             (SELECT bool_or(by_meaning) FROM fused f WHERE f.conversation_id = m.conversation_id) AS by_meaning
        FROM best_message m
        LEFT JOIN text_threads t ON t.conversation_id = m.conversation_id
        LEFT JOIN meaning_threads v ON v.conversation_id = m.conversation_id)
    SELECT b.conversation_id, c.title, b.score, b.by_text, b.by_meaning, b.file_path, c.updated_at, ${input.withContent === true ? pairSql : 'NULL::text'} AS content,
           ts_headline('simple', left(b.content, 20000), q.tsq, 'MaxFragments=2, MaxWords=30, MinWords=8, StartSel=**, StopSel=**, FragmentDelimiter=" … "') AS snippet
      FROM best b JOIN exai.conversations c ON c.id = b.conversation_id, q
     ORDER BY b.score DESC, c.updated_at DESC
     LIMIT ${limitParam}`;
  const rows = await asUser(deps.db, userId, async (tx) => {
    const exact = vector === undefined ? { messages: false, chunks: false } : await planVectorScan(tx, deps, userId, input, { efSearch: checked.efSearch, withChunks: true });
    const sql = statement(exact);
    return tx.query<{
      conversation_id: string;
      title: string | null;
      score: string | number;
      by_text: boolean;
      by_meaning: boolean;
      file_path: string | null;
      updated_at: Date | string;
      snippet: string;
      content: string | null;
    }>(sql, params);
  });
  const results = rows.rows.map((row) => ({
    continuation_id: row.conversation_id,
    title: row.title,
    snippet: row.snippet,
    score: Number(Number(row.score).toFixed(6)),
    matched: [...(row.by_text ? (['text'] as const) : []), ...(row.by_meaning ? (['meaning'] as const) : [])],
    updated_at: new Date(row.updated_at).toISOString(),
    ...(row.file_path === null ? {} : { file: row.file_path }),
    ...(row.content === null ? {} : { content: row.content }),
  }));
  if (vector === undefined && note === undefined && signals !== 'text') note = 'The query has no words the embedder can use, so these results come from full-text search alone.';
  return { results, mode: vector === undefined ? 'full_text' : 'hybrid', embedder: about, ...(note === undefined ? {} : { note }) };
}


/** The embedder as an answer names it; `lexical` for the built-in one. */
const describeEmbedder = (embedder: Embedder): SearchAnswer['embedder'] => ({ model: embedder.model, kind: embedder.local ? 'lexical' : 'semantic' });

/**
 * ORDER BY nearest first: through the HNSW index, or, for a small scope (`exact`), comparing every
 * vector in it: "+ 0" is not the index's expression, so PostgreSQL does not use the index.
 */
const nearestFirst = (distance: string, exact: boolean): string => (exact ? `(${distance}) + 0` : distance);

/**
 * Sets the transaction's HNSW search (the candidate list from the recall asked for; iterative scans,
 * which keep going past rows that row-level security or the filters drop, pgvector 0.8) and says,
 * for messages and file chunks, whether the scope is small enough to compare every vector
 * (see exactVectorScanUpTo).
 */
async function planVectorScan(
  tx: Queryable,
  deps: Pick<SearchDeps, 'embedder' | 'exactScanUpTo'>,
  userId: string,
  filters: SearchFilters,
  options: { efSearch: number; withChunks: boolean },
): Promise<{ messages: boolean; chunks: boolean }> {
  await tx.query(`SELECT set_config('hnsw.ef_search', $1, true), set_config('hnsw.iterative_scan', 'relaxed_order', true)`, [String(options.efSearch)]);
  const upTo = deps.exactScanUpTo ?? exactVectorScanUpTo;
  const inScope = await vectorsInScope(tx, userId, filters, { model: deps.embedder.model, dims: deps.embedder.dimensions, upTo, withChunks: options.withChunks });
  return { messages: inScope.messages <= upTo, chunks: inScope.chunks <= upTo };
}

/**
 * How many of the user's vectors of the model the search's scope holds (its filters applied),
 * counted up to one past `upTo`: whether to compare them all or walk the index.
 * Rows of the model without a vector count too, so that an index-only scan can count messages.
 * Run as the user.
 */
async function vectorsInScope(
  tx: Queryable,
  userId: string,
  input: SearchFilters,
  scan: { model: string; dims: number; upTo: number; withChunks: boolean },
): Promise<{ messages: number; chunks: number }> {
  const { model, dims, upTo } = scan;
  const { params, add } = sqlParameters();
  const scope = filterScope(input, add);
  const messageScope = scope('m.conversation_id', 'm.created_at');
  const modelParam = add(model);
  const counted = (rows: string) => `(SELECT count(*) FROM (${rows} LIMIT ${upTo + 1}) counted)`;
  const found = await tx.query<{ messages: string | number; chunks: string | number }>(
    `SELECT ${counted(`SELECT 1 FROM exai.message_embeddings e ${messageScope === '' ? '' : 'JOIN exai.messages m ON m.id = e.message_id'}
                        WHERE e.owner_id = ${add(userId)} AND e.model = ${modelParam} ${messageScope}`)} AS messages,
            ${
              scan.withChunks
                ? counted(`SELECT 1 FROM exai.file_chunk_embeddings fe
                        WHERE fe.model = ${modelParam} AND fe.dimensions = ${dims} AND fe.embedding IS NOT NULL
                          AND fe.storage_key IN (SELECT fm.storage_key FROM exai.file_metadata fm JOIN exai.conversation_files cf ON cf.file_id = fm.id
                                                  WHERE fm.deleted_at IS NULL ${scope('cf.conversation_id', 'cf.linked_at')})`)
                : '0'
            } AS chunks`,
    params,
  );
  const row = found.rows[0]!;
  return { messages: Number(row.messages), chunks: Number(row.chunks) };
}

/**
 * Conversations like a given one (duplicates, earlier attempts at the same
 * problem): the thread's mean vector, searched for through the HNSW index (or
 * compared with each of the user's vectors, as for search: see exactVectorScanUpTo),
 * best message per other conversation. Vectors only: no words to match.
 */
export async function similarConversations(
  deps: Pick<SearchDeps, 'db' | 'embedder' | 'exactScanUpTo'>,
  userId: string,
  conversationId: string,
  input: { limit?: number; threshold?: number } = {},
): Promise<SearchAnswer> {
  const limit = input.limit ?? 10;
  if (!Number.isInteger(limit) || limit < 1 || limit > 50) throw new ExaiError('invalid_argument', 'limit must be a whole number from 1 to 50.');
  const threshold = input.threshold ?? 0.2;
  if (!(threshold >= 0 && threshold <= 1)) throw new ExaiError('invalid_argument', 'threshold must be between 0 and 1 (cosine similarity).');
  const { embedder } = deps;
  const dims = embedder.dimensions;
  const about = describeEmbedder(embedder);
  return asUser(deps.db, userId, async (tx) => {
    const exists = await tx.query('SELECT 1 FROM exai.conversations WHERE id = $1', [conversationId]);
    if (exists.rows.length === 0) throw new ExaiError('not_found', `No conversation ${conversationId} of yours.`);
    const exact = (await planVectorScan(tx, deps, userId, {}, { efSearch: efSearchFor(0.95, limit, about.kind), withChunks: false })).messages;
    const rows = await tx.query<{ conversation_id: string; title: string | null; similarity: number; updated_at: Date | string; snippet: string | null }>(
      `WITH centre AS (
         SELECT avg(e.embedding::vector(${dims})) AS v FROM exai.message_embeddings e
          WHERE e.conversation_id = $1 AND e.model = $2 AND e.dimensions = ${dims} AND e.embedding IS NOT NULL),
       near AS (
         SELECT e.conversation_id, 1 - (e.embedding::vector(${dims}) <=> (SELECT v FROM centre)) AS similarity
           FROM exai.message_embeddings e
          WHERE e.model = $2 AND e.dimensions = ${dims} AND e.embedding IS NOT NULL AND e.conversation_id <> $1 ${exact ? 'AND e.owner_id = $5' : ''}
          ORDER BY ${nearestFirst(`e.embedding::vector(${dims}) <=> (SELECT v FROM centre)`, exact)}
          LIMIT ${candidates}),
       best AS (SELECT conversation_id, max(similarity) AS similarity FROM near GROUP BY conversation_id)
       SELECT b.conversation_id, c.title, b.similarity, c.updated_at,
              (SELECT left(m.content, 240) FROM exai.messages m WHERE m.conversation_id = b.conversation_id ORDER BY m.seq LIMIT 1) AS snippet
         FROM best b JOIN exai.conversations c ON c.id = b.conversation_id
        WHERE b.similarity >= $3
        ORDER BY b.similarity DESC
        LIMIT $4`,
      [conversationId, embedder.model, threshold, limit, ...(exact ? [userId] : [])],
    );
    const results = rows.rows.map((row) => ({
      continuation_id: row.conversation_id,
      title: row.title,
      snippet: row.snippet ?? '',
      score: Number(Number(row.similarity).toFixed(6)),
      matched: ['meaning' as const],
      updated_at: new Date(row.updated_at).toISOString(),
    }));
    if (results.length === 0 && rows.rows.length === 0) {
      const indexed = await tx.query('SELECT 1 FROM exai.message_embeddings WHERE conversation_id = $1 AND model = $2 AND embedding IS NOT NULL LIMIT 1', [conversationId, embedder.model]);
      if (indexed.rows.length === 0) return { results, mode: 'vector' as const, embedder: about, note: 'This conversation is not indexed yet (the indexing job embeds new turns within a minute); try again shortly.' };
    }
    return { results, mode: 'vector' as const, embedder: about };
  });
}
