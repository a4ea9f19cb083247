// A fresh, migrated PostgreSQL database for a benchmark, and bulk seeding of messages.
import { sql, type SQL } from 'drizzle-orm';
import pg from 'pg';
import { openDatabase, type Database } from '../../src/db/client.js';

export const BENCH_ADMIN_URL =
  process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

/** Drops and recreates `name`, migrates it, and returns it with its URL. */
export async function freshDatabase(name: string): Promise<{ database: Database; url: string }> {
  const admin = new pg.Client({ connectionString: BENCH_ADMIN_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = withDatabase(BENCH_ADMIN_URL, name);
  const database = await openDatabase({ kind: 'postgres', url, poolSize: 8 });
  await database.migrate();
  return { database, url };
}

/**
 * The database a benchmark runs on: with BENCH_DATABASE_URL, a fresh database `name` on that
 * PostgreSQL server (never the named database itself); without it, an in-memory PGlite. Migrated.
 */
export async function benchDatabase(name: string): Promise<Database> {
  if (process.env.BENCH_DATABASE_URL) return (await freshDatabase(name)).database;
  const database = await openDatabase({ kind: 'pglite' });
  await database.migrate();
  return database;
}

const WORDS = [
  'meeting',
  'project',
  'deadline',
  'running',
  'coffee',
  'design',
  'review',
  'launch',
  'budget',
  'server',
  'database',
  'question',
  'answer',
  'weekend',
  'travel',
  'music',
  'kitchen',
  'garden',
  'report',
  'customer',
  'feature',
  'bug',
  'release',
  'morning',
  'evening',
  'holiday',
  'weather',
];
const CJK = ['你好', '世界', '今天', '会议', '项目', '咖啡', '周末', '天气', 'こんにちは', '元気'];

/**
 * Inserts `count` messages into one conversation in one SQL statement per 10,000 rows, with
 * timestamps one millisecond apart and text drawn from English words and CJK phrases (one
 * message in ten has CJK), so search has realistic postings.
 */
export async function seedMessages(
  database: Database,
  target: { conversationId: string; userId: string },
  count: number,
): Promise<void> {
  const db = database.db;
  const { conversationId, userId } = target;
  const words = `{${WORDS.join(',')}}`;
  const cjk = `{${CJK.join(',')}}`;
  for (let start = 0; start < count; start += 10_000) {
    const n = Math.min(10_000, count - start);
    await db.execute(sql`
      insert into messages (id, conversation_id, user_id, content, role, created_at)
      select md5(${conversationId} || g::text), ${conversationId}, ${userId},
             'message ' || g || ' about ' || (${words}::text[])[1 + (g * 7) % ${WORDS.length}]
               || ' and ' || (${words}::text[])[1 + (g * 13) % ${WORDS.length}]
               || case when g % 10 = 0 then ' ' || (${cjk}::text[])[1 + (g / 10) % ${CJK.length}] || '的事情' else '' end,
             'USER', timestamptz '2026-01-01' + g * interval '1 millisecond'
      from generate_series(${start + 1}::int, ${start + n}::int) as g`);
  }
  await db.execute(sql`analyze messages`);
}

export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Rows of a raw statement (pg answers `execute` with `{ rows }`). */
export async function queryRows<T>(database: Database, query: SQL): Promise<T[]> {
  const result: unknown = await database.db.execute(query);
  return (result as { rows: T[] }).rows;
}
