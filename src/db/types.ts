/** One query interface over embedded PGlite and node-postgres. */
export interface QueryResult<R> {
  rows: R[];
  /** Rows inserted, updated or deleted by the statement; 0 for plain selects. */
  affectedRows: number;
}

export type Row = Record<string, unknown>;

export interface Queryable {
  /** One statement with `$1 …` parameters. */
  query<R = Row>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /** A script of several statements without parameters, sent in one round trip; one result each. */
  exec(script: string): Promise<QueryResult<Row>[]>;
}

export type DatabaseKind = 'pglite' | 'postgres';

export interface Database extends Queryable {
  readonly kind: DatabaseKind;
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Runs one statement on its own, outside any transaction, without the client's query
   * timeout: maintenance such as an index build over a backfill, which takes minutes
   * (CREATE INDEX CONCURRENTLY may not run in a transaction). The server's own
   * statement_timeout, if the role has one, still applies.
   */
  maintenance(statement: string): Promise<void>;
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
