// REST send-message throughput against a bare `pg` single-row INSERT loop, both at concurrency
// 32, into the same messages table (same indexes and search column), in the same run, on the
// real PostgreSQL. Ours includes everything a send does: HTTP, JWT + session check, validation,
// the participant check, the rate-limit count, the insert and the conversation's lastMessageAt.
// Target ratio ≥ 0.5.
//
//   npm run build && npx tsx bench/send-message.ts
//   env: BENCH_DATABASE_URL, BENCH_CONCURRENCY (32), BENCH_SECONDS (8), BENCH_POOL (server pool, 10),
//        BENCH_SHARED=1 (all senders in one conversation instead of one each)
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createId } from '../src/utils/ids.js';
import pg from 'pg';
import { Pool as HttpPool } from 'undici';
import { freshDatabase } from './lib/bench-db.js';

const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const POOL = process.env.BENCH_POOL ?? '10'; // the product's default DATABASE_POOL_SIZE
const SHARED = process.env.BENCH_SHARED === '1';

const { database, url: databaseUrl } = await freshDatabase('parley_bench_send');
await database.close();

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

// The real server, as `npm start` runs it, in its own process.
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
// BENCH_SERVER_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the server.
const serverArgs = (process.env.BENCH_SERVER_ARGS ?? '').split(' ').filter(Boolean);
const child = spawn('node', [...serverArgs, 'dist/server.js'], {
  env: {
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    JWT_SECRET: 'bench-secret-bench-secret-bench-secret-42',
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_SIZE: POOL,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'error',
    MESSAGE_RATE_LIMIT: '1000000000',
    REGISTER_MAX_PER_IP: '1000000',
    ARGON2_MEMORY_KIB: '4096',
    ARGON2_TIME_COST: '1',
  },
  stdio: ['ignore', 'inherit', 'inherit'],
});
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${base}/health`)).ok) break;
  } catch {
    if (i > 200) throw new Error('server did not start');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function json<T>(method: string, path: string, body: unknown, token?: string): Promise<T> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
  if (!response.ok)
    throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { data: T }).data;
}

// One sender per worker, each in a conversation of their own (or all in one with BENCH_SHARED).
const senders: Array<{ token: string; userId: string; conversationId: string }> = [];
for (let i = 0; i < CONCURRENCY; i++) {
  const auth = await json<{ accessToken: string; user: { id: string } }>(
    'POST',
    '/api/auth/register',
    {
      email: `sender${i}-${createId()}@bench.test`,
      password: 'bench-password-1',
    },
  );
  senders.push({ token: auth.accessToken, userId: auth.user.id, conversationId: '' });
}
if (SHARED) {
  const room = await json<{ id: string }>(
    'POST',
    '/api/conversations',
    {
      title: 'shared',
      participantIds: senders.slice(1).map((s) => s.userId),
    },
    senders[0]!.token,
  );
  for (const s of senders) s.conversationId = room.id;
} else {
  for (const s of senders)
    s.conversationId = (
      await json<{ id: string }>('POST', '/api/conversations', { title: 'own' }, s.token)
    ).id;
}

/** CPU seconds used so far by a process (user + system), from /proc (Linux). */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks
  } catch {
    return 0;
  }
}
const postgresPids = () =>
  execFileSync('pgrep', ['-u', 'postgres'], { encoding: 'utf8' }).trim().split('\n').map(Number);
/** CPU seconds of the server, this process (the load generator) and all of PostgreSQL. */
function cpuSnapshot() {
  return {
    server: cpuSeconds(child.pid!),
    client: cpuSeconds(process.pid),
    postgres: postgresPids().reduce((sum, pid) => sum + cpuSeconds(pid), 0),
  };
}

interface Run {
  perSecond: number;
  /** CPU milliseconds per operation, by process. */
  cpuMsPerOp: { server: number; client: number; postgres: number };
}

/** Runs `task` in `CONCURRENCY` loops for SECONDS: operations per second and CPU per operation. */
async function throughput(task: (worker: number, n: number) => Promise<void>): Promise<Run> {
  let done = 0;
  const before = cpuSnapshot();
  const deadline = performance.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, worker) => {
      for (let n = 0; performance.now() < deadline; n++) {
        await task(worker, n);
        done += 1;
      }
    }),
  );
  const after = cpuSnapshot();
  const perOp = (key: keyof typeof before) =>
    Number((((after[key] - before[key]) * 1000) / done).toFixed(3));
  return {
    perSecond: done / ((performance.now() - started) / 1000),
    cpuMsPerOp: { server: perOp('server'), client: perOp('client'), postgres: perOp('postgres') },
  };
}

const content = 'The quick brown fox jumps over the lazy dog — 你好世界';
const pool = new pg.Pool({ connectionString: databaseUrl, max: CONCURRENCY });

async function bareInsert(worker: number) {
  const s = senders[worker]!;
  await pool.query(
    `INSERT INTO messages (id, conversation_id, user_id, content, role) VALUES ($1, $2, $3, $4, 'USER')`,
    [createId(), s.conversationId, s.userId, content],
  );
}

// undici's request API rather than fetch: the load generator shares the two cores with the
// server and PostgreSQL, so the lighter client the better (the bare loop has no HTTP at all).
const http = new HttpPool(base, { connections: CONCURRENCY });
async function restSend(worker: number) {
  const s = senders[worker]!;
  const response = await http.request({
    path: `/api/chat/conversations/${s.conversationId}/messages`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${s.token}` },
    body: JSON.stringify({ content }),
  });
  const text = await response.body.text();
  if (response.statusCode !== 201) throw new Error(`send failed: ${response.statusCode} ${text}`);
}

// Warm both paths, then alternate so drift in the machine affects both alike.
await throughput(bareInsert);
await throughput(restSend);
const bareRuns: Run[] = [];
const restRuns: Run[] = [];
for (let round = 0; round < ROUNDS; round++) {
  bareRuns.push(await throughput(bareInsert));
  restRuns.push(await throughput(restSend));
}
const bare = bareRuns.map((r) => r.perSecond);
const ours = restRuns.map((r) => r.perSecond);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
// This machine's speed drifts between runs; each adjacent pair saw the same conditions.
const pairRatios = ours.map((rest, i) => rest / bare[i]!);
const report = {
  concurrency: CONCURRENCY,
  secondsPerRun: SECONDS,
  serverPool: Number(POOL),
  conversations: SHARED ? 'one shared by all senders' : 'one per sender',
  bareInsertsPerSecond: Number(mean(bare).toFixed(0)),
  restSendsPerSecond: Number(mean(ours).toFixed(0)),
  ratio: Number(median(pairRatios).toFixed(3)),
  pairRatios: pairRatios.map((r) => Number(r.toFixed(3))),
  target: '≥ 0.5',
  runs: { bare: bare.map(Math.round), rest: ours.map(Math.round) },
  // Where the time goes: CPU milliseconds per operation in each process (2 cores in all).
  cpuMsPerOperation: { bare: bareRuns.at(-1)!.cpuMsPerOp, rest: restRuns.at(-1)!.cpuMsPerOp },
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(
  `REST sends/s ${report.restSendsPerSecond} vs bare INSERTs/s ${report.bareInsertsPerSecond}: ratio ${report.ratio} (median of ${ROUNDS} alternating pairs; target ≥ 0.5)\n`,
);
await pool.end();
await http.close();
child.kill('SIGTERM');
