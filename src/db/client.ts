// Opens the database (embedded PGlite or a PostgreSQL pool) behind one Drizzle `Db` type and
// applies the committed migrations.
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PGlite, type QueryOptions, type Results } from '@electric-sql/pglite';
import { setImmediate } from 'node:timers/promises';
import { sql } from 'drizzle-orm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import pg from 'pg';
import * as schema from './schema.js';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export type DatabaseTarget =
  | { kind: 'pglite'; /** undefined: in memory */ dataDir?: string }
  | { kind: 'postgres'; url: string; poolSize?: number };

export interface Database {
  readonly kind: DatabaseTarget['kind'];
  readonly db: Db;
  /**
   * Runs `work` with each of its statements cancelled after `timeoutMs` (SQLSTATE 57014, see
   * isStatementTimeout). PostgreSQL: `statement_timeout` set for one transaction, so the pool's
   * connections keep their own setting. PGlite runs statements on this process's thread with no
   * timer that could interrupt one: there each statement of `work` waits for the event loop's
   * next turn first, so other requests interleave with it (FairPGlite), and what bounds it is
   * what the caller asks of it.
   */
  withStatementTimeout<T>(timeoutMs: number, work: (db: Db) => Promise<T>): Promise<T>;
  /** Throws when the database cannot answer a trivial query. */
  ping(): Promise<void>;
  migrate(): Promise<void>;
  close(): Promise<void>;
}

const migrationsFolder = fileURLToPath(new URL('./migrations', import.meta.url));

/** Any constant works; it only has to be the same for every Parley instance. */
const MIGRATION_LOCK_KEY = 7_274_133_901;

export function targetFromConfig(config: {
  DATABASE_URL?: string | undefined;
  DATA_DIR: string;
  DATABASE_POOL_SIZE: number;
}): DatabaseTarget {
  if (!config.DATABASE_URL) return { kind: 'pglite', dataDir: `${config.DATA_DIR}/pglite` };
  if (config.DATABASE_URL === 'memory://') return { kind: 'pglite' };
  return { kind: 'postgres', url: config.DATABASE_URL, poolSize: config.DATABASE_POOL_SIZE };
}

export async function openDatabase(
  target: DatabaseTarget,
  onPoolError: (error: Error) => void = () => {},
): Promise<Database> {
  return target.kind === 'pglite' ? openPglite(target.dataDir) : openPostgres(target, onPoolError);
}

/**
 * PGlite runs each statement on this thread and settles its promise as a microtask, so a
 * request that runs statement after statement (a search: rank, headlines over long texts) never
 * let the event loop read anyone else's request until it was done, and one user's burst of
 * searches ran back to back as a single block of hundreds of milliseconds. Inside
 * `withStatementTimeout` (the expensive work that PostgreSQL would bound with a timeout) each
 * statement first waits for the event loop's next turn, so other requests interleave with it.
 * Only there: yielding before every statement of every request made broadcasts to many sockets
 * a third slower (bench/fanout.ts), and a send is one short statement.
 */
const interleaved = new AsyncLocalStorage<true>();

class FairPGlite extends PGlite {
  override async query<T>(
    query: string,
    params?: unknown[],
    options?: QueryOptions,
  ): Promise<Results<T>> {
    if (interleaved.getStore()) await setImmediate();
    return super.query<T>(query, params, options);
  }
}

async function openPglite(dataDir: string | undefined): Promise<Database> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const client = new FairPGlite(dataDir);
  await client.waitReady;
  const db = drizzlePglite({ client, schema });
  return {
    kind: 'pglite',
    db,
    withStatementTimeout: (_timeoutMs, work) => interleaved.run(true, () => work(db)),
    ping: async () => {
      await client.query('select 1');
    },
    migrate: () => migratePglite(db, { migrationsFolder }),
    close: () => client.close(),
  };
}

async function openPostgres(
  target: Extract<DatabaseTarget, { kind: 'postgres' }>,
  onPoolError: (error: Error) => void,
): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: target.url,
    max: target.poolSize ?? 10,
    // A PostgreSQL that cannot be reached (a partition, a failover) must not hold requests
    // forever: waiting for a connection, and a query, give up (503 to the caller, SPEC §2).
    connectionTimeoutMillis: 5_000,
    query_timeout: 30_000,
    keepAlive: true,
  });
  // An idle client losing its connection emits here; unhandled, it would kill the process.
  pool.on('error', onPoolError);
  // Fail at start, with the connection error, rather than on the first request.
  await pool.query('select 1');
  const db = drizzlePg({ client: pool, schema });
  return {
    kind: 'postgres',
    db,
    withStatementTimeout: (timeoutMs, work) =>
      db.transaction(async (tx) => {
        // SET takes no parameters; set_config(…, true) is SET LOCAL with a bound value.
        await tx.execute(sql`select set_config('statement_timeout', ${String(timeoutMs)}, true)`);
        return work(tx);
      }),
    ping: async () => {
      await pool.query('select 1');
    },
    migrate: async () => {
      // Several instances starting at once must not apply the same migration twice: each waits
      // for the session-level lock, and the migrator skips what the first one applied.
      const lockClient = await pool.connect();
      try {
        await lockClient.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
        await migratePg(db, { migrationsFolder });
      } finally {
        await lockClient
          .query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY])
          .catch(() => {});
        lockClient.release();
      }
    },
    close: () => pool.end(),
  };
}
