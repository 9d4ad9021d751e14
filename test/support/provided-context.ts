/** What the global setup hands every suite. */
import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Path of a tarball of a migrated PGlite data directory. */
    pgliteSnapshot: string;
  }
}
