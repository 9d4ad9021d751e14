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
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
