// REST send-message throughput, with the AI set explicitly both ways, each against its bare
// reference measured in the same run on the real PostgreSQL, all at concurrency 32:
//
// - AI off (the conversations' `aiEnabled: false`): our send against a bare `pg` single-row
//   INSERT loop into the same messages table (same indexes and search column). Ours includes
//   everything a send does: HTTP, JWT + session check, validation, the participant check, the
//   rate-limit count, the insert and the conversation's lastMessageAt. Target ratio ≥ 0.5.
// - AI on, against an OpenAI-compatible fake upstream in its own process: our send, whose answer
//   streams in the background, counted once every answer of the run has ended, against a bare
//   answered send: INSERT the question, stream the upstream's answer (undici, no SDK), INSERT
//   the answer.
//
// The server used to inherit the default AI settings here: the local provider, whose default
// model cannot be downloaded on this machine, so every send measured a failing download (the
// issue measured 137 sends/s instead of ~700).
//
//   npm run build && npx tsx bench/send-message.ts
//   env: BENCH_DATABASE_URL, BENCH_CONCURRENCY (32), BENCH_SECONDS (6), BENCH_ROUNDS (3),
//        BENCH_POOL (server pool, 10), BENCH_SHARED=1 (all senders in one conversation each way)
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import pg from 'pg';
import { Pool as HttpPool } from 'undici';
import { createId } from '../src/utils/ids.js';
import type { Behaviour } from '../test/support/fake-openai.js';
import { freshDatabase } from './lib/bench-db.js';

const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const POOL = process.env.BENCH_POOL ?? '10'; // the product's default DATABASE_POOL_SIZE
const SHARED = process.env.BENCH_SHARED === '1';

// Whatever happens, no server or upstream outlives the benchmark.
const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

// The upstream: the test suite's fake (the chat-completions SSE wire format), in its own process
// so its work is not counted as the server's. A short answer: the figure is the cost of an
// answered send, not of streaming a long text.
const ANSWER: Behaviour = {
  kind: 'stream',
  tokens: ['Sure', ',', ' here', ' is', ' the', ' answer', '.'],
  delayMs: 1,
  usage: { prompt: 20, completion: 7 },
};
const upstream = fork(new URL('./lib/fake-upstream.ts', import.meta.url), {
  execArgv: ['--import', 'tsx'],
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
children.push(upstream);
const upstreamMessage = <T>() =>
  new Promise<T>((resolve) => upstream.once('message', (message: T) => resolve(message)));
const { baseURL } = await upstreamMessage<{ baseURL: string }>();
upstream.send({ type: 'behaviour', behaviour: ANSWER });
await upstreamMessage();

const { database, url: databaseUrl } = await freshDatabase('parley_bench_send');
await database.close();

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

// The real server, as `npm start` runs it, in its own process, with its AI provider set here.
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
// BENCH_SERVER_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the server.
const serverArgs = (process.env.BENCH_SERVER_ARGS ?? '').split(' ').filter(Boolean);
const server = spawn('node', [...serverArgs, 'dist/server.js'], {
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
    AI_PROVIDER: 'openai',
    OPENAI_BASE_URL: baseURL,
    OPENAI_API_KEY: 'sk-bench',
    AI_MODEL: 'bench-model',
    AI_TITLES: 'false',
    // SPEC §8's per-user cap on pending answers is about fairness between users; here each
    // sender's answers may trail its sends, and that backlog is what the drain below measures.
    AI_MAX_PENDING_PER_USER: '1000000',
    // As many answers generate at once as there are senders: none waits for a turn.
    AI_CONCURRENCY: String(CONCURRENCY),
  },
  stdio: ['ignore', 'inherit', 'inherit'],
});
children.push(server);
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${base}/health`)).ok) break;
  } catch {
    if (i > 200 || server.exitCode !== null) throw new Error('server did not start');
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

// One sender per worker, each with a conversation of their own with the AI off and one with it
// on (or all senders in one of each with BENCH_SHARED).
interface Sender {
  token: string;
  userId: string;
  conversation: { off: string; on: string };
  /** The AI-on conversation's first message, which every AI-on send replies to. */
  root: string;
}
const senders: Sender[] = [];
for (let i = 0; i < CONCURRENCY; i++) {
  const auth = await json<{ accessToken: string; user: { id: string } }>(
    'POST',
    '/api/auth/register',
    { email: `sender${i}-${createId()}@bench.test`, password: 'bench-password-1' },
  );
  senders.push({
    token: auth.accessToken,
    userId: auth.user.id,
    conversation: { off: '', on: '' },
    root: '',
  });
}
const conversation = async (owner: Sender, aiEnabled: boolean, participants: Sender[]) =>
  (
    await json<{ id: string }>(
      'POST',
      '/api/conversations',
      {
        title: aiEnabled ? 'ai on' : 'ai off',
        settings: { aiEnabled },
        ...(participants.length ? { participantIds: participants.map((s) => s.userId) } : {}),
      },
      owner.token,
    )
  ).id;
const rootOf = async (owner: Sender, conversationId: string) =>
  (
    await json<{ message: { id: string } }>(
      'POST',
      `/api/chat/conversations/${conversationId}/messages`,
      { content: 'Questions follow.', ai: false },
      owner.token,
    )
  ).message.id;
if (SHARED) {
  const off = await conversation(senders[0]!, false, senders.slice(1));
  const on = await conversation(senders[0]!, true, senders.slice(1));
  const root = await rootOf(senders[0]!, on);
  for (const s of senders) Object.assign(s, { conversation: { off, on }, root });
} else {
  for (const s of senders) {
    s.conversation = { off: await conversation(s, false, []), on: await conversation(s, true, []) };
    s.root = await rootOf(s, s.conversation.on);
  }
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
/** CPU seconds of the server, this process (the load generator), the upstream and PostgreSQL. */
function cpuSnapshot() {
  return {
    server: cpuSeconds(server.pid!),
    client: cpuSeconds(process.pid),
    upstream: cpuSeconds(upstream.pid!),
    postgres: postgresPids().reduce((sum, pid) => sum + cpuSeconds(pid), 0),
  };
}

interface Run {
  perSecond: number;
  /** Operations accepted per second while the loops ran (differs when answers trail sends). */
  acceptedPerSecond: number;
  /** CPU milliseconds per operation, by process. */
  cpuMsPerOp: ReturnType<typeof cpuSnapshot>;
}

/**
 * Runs `task` in `CONCURRENCY` loops for SECONDS, then waits for `settled` (the answers still
 * streaming): operations per second over the whole time, and CPU per operation.
 */
async function throughput(
  task: (worker: number) => Promise<void>,
  settled: () => Promise<void> = () => Promise.resolve(),
): Promise<Run> {
  let done = 0;
  const before = cpuSnapshot();
  const started = performance.now();
  const deadline = started + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, worker) => {
      while (performance.now() < deadline) {
        await task(worker);
        done += 1;
      }
    }),
  );
  const loopsEnded = performance.now();
  await settled();
  const ended = performance.now();
  const after = cpuSnapshot();
  const perOp = (key: keyof typeof before) =>
    Number((((after[key] - before[key]) * 1000) / done).toFixed(3));
  return {
    perSecond: done / ((ended - started) / 1000),
    acceptedPerSecond: done / ((loopsEnded - started) / 1000),
    cpuMsPerOp: {
      server: perOp('server'),
      client: perOp('client'),
      upstream: perOp('upstream'),
      postgres: perOp('postgres'),
    },
  };
}

const content = 'The quick brown fox jumps over the lazy dog — 你好世界';
const pool = new pg.Pool({ connectionString: databaseUrl, max: CONCURRENCY });
const insertQuestion = (s: Sender, conversationId: string) =>
  pool.query<{ id: string }>(
    `INSERT INTO messages (id, conversation_id, user_id, content, role) VALUES ($1, $2, $3, $4, 'USER') RETURNING id`,
    [createId(), conversationId, s.userId, content],
  );

async function bareInsert(worker: number) {
  const s = senders[worker]!;
  await insertQuestion(s, s.conversation.off);
}

// An answered send at its barest: the question, the upstream's stream read and parsed, the answer.
const upstreamUrl = new URL(baseURL);
const upstreamHttp = new HttpPool(upstreamUrl.origin, { connections: CONCURRENCY });
async function bareAnswer(worker: number) {
  const s = senders[worker]!;
  const question = await insertQuestion(s, s.conversation.on);
  const response = await upstreamHttp.request({
    path: `${upstreamUrl.pathname}/chat/completions`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'bench-model',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content }],
    }),
  });
  if (response.statusCode !== 200) throw new Error(`upstream answered ${response.statusCode}`);
  let answer = '';
  for (const line of (await response.body.text()).split('\n')) {
    if (!line.startsWith('data: {')) continue;
    const chunk = JSON.parse(line.slice(6)) as {
      choices: Array<{ delta?: { content?: string } }>;
    };
    answer += chunk.choices[0]?.delta?.content ?? '';
  }
  await pool.query(
    `INSERT INTO messages (id, conversation_id, content, role, parent_id, model) VALUES ($1, $2, $3, 'ASSISTANT', $4, 'bench-model')`,
    [createId(), s.conversation.on, answer, question.rows[0]!.id],
  );
}

// undici's request API rather than fetch: the load generator shares the two cores with the
// server and PostgreSQL, so the lighter client the better (the bare loop has no HTTP at all).
const http = new HttpPool(base, { connections: CONCURRENCY });
// An AI-on send replies to the conversation's first message, so every answer's context is that
// message and the question: in one growing thread each answer would carry more history than the
// last (up to 500 messages), and the figure would depend on how long the benchmark ran.
async function send(worker: number, ai: 'off' | 'on') {
  const s = senders[worker]!;
  const response = await http.request({
    path: `/api/chat/conversations/${s.conversation[ai]}/messages`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${s.token}` },
    body: JSON.stringify(ai === 'on' ? { content, parentId: s.root } : { content }),
  });
  const text = await response.body.text();
  if (response.statusCode !== 201) throw new Error(`send failed: ${response.statusCode} ${text}`);
  // With the AI on, a send that started no answer would measure nothing of it.
  if (ai === 'on' && !text.includes('"generation"')) throw new Error(`no answer started: ${text}`);
}

/**
 * Resolves once no answer is running: read from the database, not the server's /metrics, whose
 * CPU would count against the run.
 */
async function answersEnded() {
  for (;;) {
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM generations WHERE status = 'RUNNING'`,
    );
    if (rows[0]!.n === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Answers that did not complete: an AI-on figure of failing answers would be no figure. */
async function failedAnswers(): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM generations WHERE status <> 'COMPLETED'`,
  );
  return rows[0]!.n;
}

const sendOff = (worker: number) => send(worker, 'off');
const sendOn = (worker: number) => send(worker, 'on');

// Warm every path, then alternate so drift in the machine affects each pair alike.
await throughput(bareInsert);
await throughput(sendOff);
await throughput(bareAnswer);
await throughput(sendOn, answersEnded);
const runs = {
  bareInsert: [] as Run[],
  off: [] as Run[],
  bareAnswer: [] as Run[],
  on: [] as Run[],
};
for (let round = 0; round < ROUNDS; round++) {
  runs.bareInsert.push(await throughput(bareInsert));
  runs.off.push(await throughput(sendOff));
  runs.bareAnswer.push(await throughput(bareAnswer));
  runs.on.push(await throughput(sendOn, answersEnded));
}
const failed = await failedAnswers();
if (failed > 0)
  throw new Error(`${failed} answers failed: the AI-on figure would measure failures`);

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rate = (rs: Run[]) => rs.map((r) => r.perSecond);
/** This machine's speed drifts between runs; each adjacent pair saw the same conditions. */
function compare(ours: Run[], reference: Run[]) {
  const pairRatios = ours.map((r, i) => r.perSecond / reference[i]!.perSecond);
  return {
    oursPerSecond: Math.round(mean(rate(ours))),
    referencePerSecond: Math.round(mean(rate(reference))),
    ratio: Number(median(pairRatios).toFixed(3)),
    pairRatios: pairRatios.map((r) => Number(r.toFixed(3))),
    runs: { ours: rate(ours).map(Math.round), reference: rate(reference).map(Math.round) },
    // Where the time goes: CPU milliseconds per operation in each process (2 cores in all).
    cpuMsPerOperation: { ours: ours.at(-1)!.cpuMsPerOp, reference: reference.at(-1)!.cpuMsPerOp },
  };
}
const report = {
  concurrency: CONCURRENCY,
  secondsPerRun: SECONDS,
  serverPool: Number(POOL),
  conversations: SHARED ? 'one shared by all senders, each way' : 'one per sender, each way',
  aiOff: { ...compare(runs.off, runs.bareInsert), reference: 'bare INSERT', target: '≥ 0.5' },
  aiOn: {
    ...compare(runs.on, runs.bareAnswer),
    reference: 'bare answered send (INSERT, upstream stream, INSERT)',
    // Sends accepted while the loops ran; the figure above also waits for their answers.
    acceptedPerSecond: runs.on.map((r) => Math.round(r.acceptedPerSecond)),
    answer: `${ANSWER.tokens.length} tokens, 1 ms apart`,
  },
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(
  `AI off: REST sends/s ${report.aiOff.oursPerSecond} vs bare INSERTs/s ${report.aiOff.referencePerSecond}: ratio ${report.aiOff.ratio} (target ≥ 0.5)\n` +
    `AI on (fake upstream): answered sends/s ${report.aiOn.oursPerSecond} vs bare answered sends/s ${report.aiOn.referencePerSecond}: ratio ${report.aiOn.ratio}\n` +
    `(each the median of ${ROUNDS} alternating pairs)\n`,
);
await pool.end();
await http.close();
await upstreamHttp.close();
const exited = (child: ChildProcess) => new Promise((resolve) => child.once('exit', resolve));
server.kill('SIGTERM');
upstream.send({ type: 'close' });
await Promise.all([exited(server), exited(upstream)]);
