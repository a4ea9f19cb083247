// Keyset pagination at depth: the latency of a page at the oldest end of a 100,000-message
// conversation against a page at the newest end, on the real PostgreSQL, through the HTTP API.
// Target: p50(oldest) / p50(newest) ≤ 1.5, and the plan uses the index.
//
//   npx tsx bench/pagination.ts        (BENCH_DATABASE_URL, BENCH_MESSAGES, BENCH_ROUNDS)
import { sql } from 'drizzle-orm';
import { freshDatabase, percentile, queryRows, seedMessages } from './lib/bench-db.js';
import { startBenchServer, userWithConversation } from './lib/bench-server.js';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 300);

const { database } = await freshDatabase('parley_bench_pagination');
const server = await startBenchServer(database);
const { token, userId, conversationId } = await userWithConversation(server, 'pagination');
let started = Date.now();
await seedMessages(database, { conversationId, userId }, MESSAGES);
process.stdout.write(`seeded ${MESSAGES} messages in ${Date.now() - started} ms\n`);

const ids = (
  await queryRows<{ id: string }>(
    database,
    sql`select id from messages where conversation_id = ${conversationId} order by created_at, id`,
  )
).map((r) => r.id);

const path = `/api/chat/conversations/${conversationId}/messages`;
const pages = {
  newest: `${path}?limit=50`,
  oldest: `${path}?limit=50&before=${ids[50]}`,
  middle: `${path}?limit=50&before=${ids[Math.floor(ids.length / 2)]}`,
  forwardFromOldest: `${path}?limit=50&after=${ids[0]}`,
};
const samples: Record<keyof typeof pages, number[]> = {
  newest: [],
  oldest: [],
  middle: [],
  forwardFromOldest: [],
};

for (let round = -20; round < ROUNDS; round++) {
  for (const [name, url] of Object.entries(pages) as Array<[keyof typeof pages, string]>) {
    started = performance.now();
    const response = await server.request<{ data: { messages: unknown[] } }>(
      'GET',
      url,
      undefined,
      token,
    );
    const elapsed = performance.now() - started;
    if (response.status !== 200 || response.body.data.messages.length !== 50)
      throw new Error(`bad page ${name}`);
    if (round >= 0) samples[name].push(elapsed); // the first 20 rounds warm caches
  }
}

// The statement the repository runs for "before" pages, explained with real execution.
const plan = (
  await queryRows<{ 'QUERY PLAN': string }>(
    database,
    sql`explain (analyze, buffers)
    select * from messages where conversation_id = ${conversationId}
      and (created_at, id) < ((select created_at from messages where id = ${ids[50]}), ${ids[50]})
    order by created_at desc, id desc limit 51`,
  )
).map((r) => r['QUERY PLAN']);

const p50 = (name: keyof typeof pages) => Number(percentile(samples[name], 50).toFixed(2));
const report = {
  messages: MESSAGES,
  rounds: ROUNDS,
  p50Ms: {
    newest: p50('newest'),
    oldest: p50('oldest'),
    middle: p50('middle'),
    forwardFromOldest: p50('forwardFromOldest'),
  },
  p90Ms: {
    newest: Number(percentile(samples.newest, 90).toFixed(2)),
    oldest: Number(percentile(samples.oldest, 90).toFixed(2)),
  },
  ratioOldestToNewest: Number((p50('oldest') / p50('newest')).toFixed(3)),
  target: '≤ 1.5',
  usesIndex: plan.some((line) => line.includes('messages_conversation_id_created_at_idx')),
};
process.stdout.write(`${plan.join('\n')}\n\n${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(
  `oldest page p50 ${report.p50Ms.oldest} ms / newest page p50 ${report.p50Ms.newest} ms = ${report.ratioOldestToNewest} (target ≤ 1.5); index used: ${report.usesIndex}\n`,
);
await server.close();
await database.close();
