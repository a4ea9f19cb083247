// Search at 100,000 messages on the real PostgreSQL: the plan uses the GIN index on the search
// column, and the p50 latency of English and CJK queries through the HTTP API.
//
//   npx tsx bench/search.ts            (BENCH_DATABASE_URL, BENCH_MESSAGES, BENCH_ROUNDS)
import { sql } from 'drizzle-orm';
import { freshDatabase, percentile, queryRows, seedMessages } from './lib/bench-db.js';
import { startBenchServer, userWithConversation } from './lib/bench-server.js';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 100);

const { database } = await freshDatabase('parley_bench_search');
// What one search costs, one after another: the per-user search limit would refuse most of them.
const server = await startBenchServer(database, {
  SEARCH_RATE_LIMIT: '1000000000',
  SEARCH_CONCURRENCY_PER_USER: '1',
});
const { token, userId, conversationId } = await userWithConversation(server, 'search');
await seedMessages(database, { conversationId, userId }, MESSAGES);

// Selective terms (how search is used), and one that matches a tenth of everything.
const queries: Record<string, string> = {
  'english rare word': 'message 77777',
  'english stems (budgets questions → budget & question, ~3,700 matches)': 'budgets questions',
  'english broad word (~7,400 matches)': 'meeting',
  'chinese two characters': '会议',
  japanese: '元気',
  'chinese + english': '周末 weather',
};

async function plan(query: string) {
  // The matching part of the repository's statement, with the same tsquery construction.
  const rows = await queryRows<{ 'QUERY PLAN': string }>(
    database,
    sql`explain (analyze, buffers)
      select id, ts_rank_cd(search_vector, q) as rank from messages,
        (select ${query === '会议' ? sql`phraseto_tsquery('simple', '会议')` : sql`websearch_to_tsquery('english', ${query})`} as q) as tq
      where conversation_id = ${conversationId} and is_deleted = false and search_vector @@ q
      order by rank desc, created_at desc, id desc limit 21`,
  );
  return rows.map((r) => r['QUERY PLAN']);
}

const report: Record<
  string,
  { hits: number; p50Ms: number; p90Ms: number; everywhereP50Ms: number }
> = {};
for (const [label, q] of Object.entries(queries)) {
  const inConversation = `/api/chat/conversations/${conversationId}/search?q=${encodeURIComponent(q)}&limit=20`;
  const everywhere = `/api/chat/search?q=${encodeURIComponent(q)}&limit=20`;
  const here: number[] = [];
  const all: number[] = [];
  let hits = 0;
  for (let round = -10; round < ROUNDS; round++) {
    let started = performance.now();
    const response = await server.request<{ data: { items: unknown[] } }>(
      'GET',
      inConversation,
      undefined,
      token,
    );
    if (round >= 0) here.push(performance.now() - started);
    if (response.status !== 200) throw new Error(`search failed: ${JSON.stringify(response.body)}`);
    hits = response.body.data.items.length;
    started = performance.now();
    await server.request('GET', everywhere, undefined, token);
    if (round >= 0) all.push(performance.now() - started);
  }
  report[label] = {
    hits,
    p50Ms: Number(percentile(here, 50).toFixed(2)),
    p90Ms: Number(percentile(here, 90).toFixed(2)),
    everywhereP50Ms: Number(percentile(all, 50).toFixed(2)),
  };
}

const englishPlan = await plan('message 77777');
const chinesePlan = await plan('会议');
process.stdout.write(
  `English query plan:\n${englishPlan.join('\n')}\n\nChinese query plan:\n${chinesePlan.join('\n')}\n\n`,
);
const usesIndex = [englishPlan, chinesePlan].every((p) =>
  p.some((line) => line.includes('messages_search_vector_idx')),
);
process.stdout.write(
  `${JSON.stringify({ messages: MESSAGES, rounds: ROUNDS, usesIndex, queries: report }, null, 2)}\n`,
);
for (const [label, r] of Object.entries(report)) {
  process.stdout.write(
    `${label}: p50 ${r.p50Ms} ms (all conversations ${r.everywhereP50Ms} ms), ${r.hits} hits on page 1\n`,
  );
}
process.stdout.write(`GIN index in both plans: ${usesIndex}\n`);
await server.close();
await database.close();
