// Values the global setups hand to test files (vitest provide/inject).
declare module 'vitest' {
  export interface ProvidedContext {
    dbKind: 'pglite' | 'postgres';
    /** A migrated PGlite data directory to copy (pglite project). */
    pgliteTemplateDir: string;
    /** Connection URL of the server holding the template database (postgres project). */
    postgresAdminUrl: string;
    /** Name of the migrated template database (postgres project). */
    postgresTemplateDb: string;
  }
}
export {};
