// Migration 0005: parley_cjk_bigrams gives what migration 0001's version gave, in time linear in
// the text's length (the first took substr at every position: quadratic on multibyte text, 7–8 s
// of PGlite for one 32,000-character message, all of it on the server's thread).
import { readFile } from 'node:fs/promises';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDatabase, type TestDatabase } from '../support/database.js';
import { selectRows } from '../support/sql.js';

let testDb: TestDatabase;
beforeAll(async () => {
  testDb = await openTestDatabase();
  // The first version, under another name, from migration 0001 itself.
  const first = await readFile(
    new URL('../../src/db/migrations/0001_search_and_idempotency.sql', import.meta.url),
    'utf8',
  );
  const definition = first.slice(0, first.indexOf('--> statement-breakpoint'));
  await testDb.database.db.execute(
    sql.raw(definition.replace('parley_cjk_bigrams(t text)', 'parley_cjk_bigrams_0001(t text)')),
  );
});
afterAll(async () => {
  await testDb.dispose();
});

const bigrams = async (fn: 'parley_cjk_bigrams' | 'parley_cjk_bigrams_0001', text: string) =>
  (
    await selectRows<{ out: string }>(
      testDb.database.db,
      sql`select ${sql.raw(fn)}(${text}) as out`,
    )
  )[0]!.out;

/** Mixed text from a seeded generator: CJK runs of every length, Latin, digits, emoji, spaces. */
function mixedText(seed: number, length: number): string {
  let state = seed;
  const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const pools = [
    '大家你好世界会议项目',
    'ひらがなカタカナ',
    '한국어문장',
    'abc xyz ',
    '0123 ',
    '😀 ',
    '\n',
  ];
  let out = '';
  while ([...out].length < length) {
    const pool = [...pools[Math.floor(next() * pools.length)]!];
    const run = 1 + Math.floor(next() * 6);
    for (let i = 0; i < run; i++) out += pool[Math.floor(next() * pool.length)];
  }
  return out;
}

describe('parley_cjk_bigrams (migration 0005)', () => {
  it('gives exactly what the first version gave', async () => {
    const samples = [
      '',
      'plain English only',
      '大',
      '大家你好',
      'hello 你好 world 世界!',
      '会议 at 10, 项目',
      ...Array.from({ length: 40 }, (_, i) => mixedText(i + 1, 20 + i * 7)),
    ];
    for (const text of samples) {
      expect(await bigrams('parley_cjk_bigrams', text), text).toBe(
        await bigrams('parley_cjk_bigrams_0001', text),
      );
    }
    expect(await bigrams('parley_cjk_bigrams', '大家你好 ok 世界')).toBe(
      '大家 家你 你好 好 世界 界',
    );
  });

  it('indexes a 32,000-character CJK message in linear time', async () => {
    const text = '会议项目'.repeat(8_000);
    const time = async (chars: number) => {
      const started = performance.now();
      await bigrams('parley_cjk_bigrams', text.slice(0, chars));
      return performance.now() - started;
    };
    await time(1_000); // warm-up
    const short = await time(4_000);
    const long = await time(32_000);
    // Eight times the text: about eight times the work (quadratic would be 64 times), and in
    // absolute terms far from the seconds the first version took.
    expect(long).toBeLessThan(Math.max(short * 24, 200));
    expect(long).toBeLessThan(2_000);
  });
});
