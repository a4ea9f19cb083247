// Search cannot stall others (issue 8, point 10): a bystander's message page while another user
// runs 8 concurrent searches, without pause, over 25 messages of 32,000 characters, against the
// same page with the server idle, in the same run, on PGlite and on PostgreSQL.
// Target: p99 of the loaded page ≤ 100 ms on both databases.
//
//   npx tsx bench/search-isolation.ts
//   env: BENCH_DATABASES (pglite,postgres), BENCH_DATABASE_URL (PostgreSQL admin URL),
//        BENCH_SAMPLES (page loads per condition, 600), BENCH_ROUNDS (3), BENCH_SEARCHERS (8)
//
// The server and the bystander run in this process (a stall of the server's event loop is
// exactly what the bystander must not feel, and its own client work is one small request at a
// time); the searcher runs in a child process, so reading 25 × 32,000 characters per answer
// costs the server's process nothing. Idle and loaded phases alternate in rounds, so drift in
// this machine's speed affects both alike.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { openDatabase, type Database } from '../src/db/client.js';
import { freshDatabase, percentile } from './lib/bench-db.js';
import { startBenchServer, userWithConversation, type BenchServer } from './lib/bench-server.js';

const DATABASES = (process.env.BENCH_DATABASES ?? 'pglite,postgres').split(',');
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 600);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SEARCHERS = Number(process.env.BENCH_SEARCHERS ?? 8);
const LONG_MESSAGES = 25;
const LONG_CHARS = 32_000;
const TARGET_P99_MS = 100;

// Every setting that changes what is measured, stated rather than inherited.
const SERVER_ENV = {
  AI_PROVIDER: 'none',
  // High on purpose: the benchmark measures what searches cost the others, not refusals.
  SEARCH_RATE_LIMIT: '1000000000',
  SEARCH_RATE_WINDOW: '1m',
  // The default: the searcher's 8 requests in flight run one at a time, the rest wait.
  SEARCH_CONCURRENCY_PER_USER: '1',
  SEARCH_STATEMENT_TIMEOUT: '2s',
  MESSAGE_RATE_LIMIT: '1000000000',
  REGISTER_MAX_PER_IP: '1000000',
  DATABASE_POOL_SIZE: '10',
};

// A common word everywhere, a phrase, a rare word near the end of each text (the far match), a
// Chinese word, and an English OR.
const QUERIES = ['meeting', '"project deadline"', 'zebra', '会议', 'budget or launch'];

/** A seeded generator, so every run searches the same texts. */
function mulberry32(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const VOCABULARY = (
  'the of and to in is that it for as with was on be by this are from or at an not have which ' +
  'but all were when we there can more one has their if will would about into out time only ' +
  'other new some could these two may first then do any like my now over such our even most ' +
  'made after also did many before must through back years where much your way well down ' +
  'meeting project deadline budget launch review design server customer feature release team ' +
  'question answer morning evening weekend report schedule estimate testing deploy database'
).split(' ');

/** English-like prose of exactly `chars` characters with a rare word near the end. */
function longText(seed: number, chars: number): string {
  const random = mulberry32(seed);
  const parts: string[] = [];
  let length = 0;
  while (length < chars - 200) {
    const roll = random();
    const word =
      roll < 0.01
        ? 'project deadline'
        : roll < 0.015
          ? '会议'
          : VOCABULARY[Math.floor(random() * VOCABULARY.length)]!;
    const part = `${word}${random() < 0.08 ? '.' : ''} `;
    parts.push(part);
    length += part.length;
  }
  const text = `${parts.join('')}and at the very end a zebra appears. `;
  return text.padEnd(chars, 'x').slice(0, chars);
}

async function openTarget(kind: string): Promise<Database> {
  if (kind !== 'pglite' && kind !== 'postgres') throw new Error(`unknown database "${kind}"`);
  if (kind === 'pglite') {
    const database = await openDatabase({ kind: 'pglite' }); // in memory
    await database.migrate();
    return database;
  }
  const { database, url } = await freshDatabase('parley_bench_search_isolation');
  await database.close();
  // The product's default pool size, so the searches compete for what a real server has.
  const pooled = await openDatabase({
    kind: 'postgres',
    url,
    poolSize: Number(SERVER_ENV.DATABASE_POOL_SIZE),
  });
  return pooled;
}

const loader = fork(new URL('./lib/search-load.ts', import.meta.url), {
  execArgv: ['--import', 'tsx'],
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
// A failure anywhere in this process must not leave the child running.
process.on('exit', () => loader.kill());
function ask<T>(command: object): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = () => reject(new Error('the search load process exited'));
    loader.once('exit', onExit);
    loader.once('message', (message: T & { type: string; message?: string }) => {
      loader.off('exit', onExit);
      if (message.type === 'error') reject(new Error(message.message));
      else resolve(message);
    });
    loader.send(command);
  });
}

async function pageLatency(server: BenchServer, path: string, token: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(`${server.url}${path}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await response.arrayBuffer();
  const elapsed = performance.now() - started;
  if (response.status !== 200) throw new Error(`bystander page: ${response.status}`);
  return elapsed;
}

async function measure(kind: string) {
  const database = await openTarget(kind);
  const server = await startBenchServer(database, SERVER_ENV);
  try {
    const seeding = performance.now();
    const searcher = await userWithConversation(server, 'searcher');
    for (let i = 0; i < LONG_MESSAGES; i++) {
      const sent = await server.request(
        'POST',
        `/api/chat/conversations/${searcher.conversationId}/messages`,
        { content: longText(i + 1, LONG_CHARS) },
        searcher.token,
      );
      if (sent.status !== 201) throw new Error(`seeding failed: ${JSON.stringify(sent.body)}`);
    }
    const bystander = await userWithConversation(server, 'bystander');
    for (let i = 0; i < 60; i++) {
      await server.request(
        'POST',
        `/api/chat/conversations/${bystander.conversationId}/messages`,
        { content: `An ordinary message, number ${i}, in a normal conversation.` },
        bystander.token,
      );
    }
    const page = `/api/chat/conversations/${bystander.conversationId}/messages?limit=50`;
    process.stderr.write(
      `${kind}: seeded in ${((performance.now() - seeding) / 1000).toFixed(1)} s\n`,
    );

    // The far match must be found and shown, or the benchmark would measure a cheaper search.
    const far = await server.request<{ data: { items: Array<{ snippet: string }> } }>(
      'GET',
      `/api/chat/search?q=zebra&limit=25`,
      undefined,
      searcher.token,
    );
    const marked = far.body.data.items.filter((hit) => hit.snippet.includes('<mark>zebra'));
    if (marked.length !== LONG_MESSAGES)
      throw new Error(`expected ${LONG_MESSAGES} marked far matches, got ${marked.length}`);

    const start = { type: 'start', url: server.url, queries: QUERIES, concurrency: SEARCHERS };
    const searchLoad = { ...start, token: searcher.token, conversationId: searcher.conversationId };
    // Warm-up of both conditions.
    for (let i = 0; i < 50; i++) await pageLatency(server, page, bystander.token);
    await ask({ ...searchLoad });
    for (let i = 0; i < 20; i++) await pageLatency(server, page, bystander.token);
    await ask({ type: 'stop' });

    const idle: number[] = [];
    const loaded: number[] = [];
    const searchLatencies: number[] = [];
    const statuses: Record<string, number> = {};
    let loadedMs = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < SAMPLES / ROUNDS; i++)
        idle.push(await pageLatency(server, page, bystander.token));
      await ask({ ...searchLoad });
      const started = performance.now();
      for (let i = 0; i < SAMPLES / ROUNDS; i++)
        loaded.push(await pageLatency(server, page, bystander.token));
      loadedMs += performance.now() - started;
      const result = await ask<{ latencies: number[]; statuses: Record<string, number> }>({
        type: 'stop',
      });
      searchLatencies.push(...result.latencies);
      for (const [status, n] of Object.entries(result.statuses))
        statuses[status] = (statuses[status] ?? 0) + n;
    }
    const ms = (values: number[], p: number) => Number(percentile(values, p).toFixed(1));
    return {
      database: kind,
      idle: { p50Ms: ms(idle, 50), p99Ms: ms(idle, 99) },
      loaded: { p50Ms: ms(loaded, 50), p99Ms: ms(loaded, 99) },
      ratio: {
        p50: Number((percentile(loaded, 50) / percentile(idle, 50)).toFixed(2)),
        p99: Number((percentile(loaded, 99) / percentile(idle, 99)).toFixed(2)),
      },
      searches: {
        perSecond: Number((searchLatencies.length / (loadedMs / 1000)).toFixed(1)),
        p50Ms: ms(searchLatencies, 50),
        p99Ms: ms(searchLatencies, 99),
        statuses,
      },
      targetMet: percentile(loaded, 99) <= TARGET_P99_MS,
    };
  } finally {
    await server.close();
    await database.close();
  }
}

try {
  for (const kind of DATABASES) {
    const r = await measure(kind);
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    process.stdout.write(
      `${r.database}: bystander page p50/p99 idle ${r.idle.p50Ms}/${r.idle.p99Ms} ms, ` +
        `with ${SEARCHERS} concurrent searches ${r.loaded.p50Ms}/${r.loaded.p99Ms} ms ` +
        `(ratio p50 ${r.ratio.p50}, p99 ${r.ratio.p99}); ${r.searches.perSecond} searches/s ` +
        `(p50 ${r.searches.p50Ms} ms); p99 ≤ ${TARGET_P99_MS} ms: ${r.targetMet ? 'met' : 'NOT met'}\n`,
    );
  }
} finally {
  if (loader.exitCode === null && loader.signalCode === null) {
    const exited = once(loader, 'exit');
    if (loader.connected) loader.send({ type: 'close' });
    await exited;
  }
}
