// Raw SQL for tests that inspect the database directly (the app itself goes through repositories).
import type { SQL } from 'drizzle-orm';
import type { Db } from '../../src/db/client.js';

/** Runs a query and returns its rows; pg and PGlite both answer with `{ rows }`. */
export async function selectRows<T>(db: Db, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as { rows: T[] };
  return result.rows;
}
