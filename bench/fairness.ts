// AI time shared fairly (issue 8, acceptance 6): a second user's time to first token while the
// first user keeps their queue of answers full, against the same user on an idle server, in the
// same run. Target: loaded ≤ idle + one answer's duration (FIFO would make it wait for the whole
// queue: about three answers).
//
//   npx tsx bench/fairness.ts
//   env: BENCH_ROUNDS (samples each, 12), BENCH_DATABASE_URL (a PostgreSQL server, where the
//        database parley_bench_fairness is made afresh; unset: in-memory PGlite)
//
// Settings that change what is measured are set here: the openai provider against an
// OpenAI-compatible upstream in its own process (first token after 50 ms, then one every 10 ms,
// 45 tokens: ~500 ms an answer), AI_CONCURRENCY=1 (one answer generates at a time, as on a
// single local model) and AI_MAX_PENDING_PER_USER=3.
import { fork } from 'node:child_process';
import { io, type Socket } from 'socket.io-client';
import type { Behaviour } from '../test/support/fake-openai.js';
import { benchDatabase } from './lib/bench-db.js';
import { startBenchServer, userWithConversation } from './lib/bench-server.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 12);
const FIRST_TOKEN_MS = 50;
const TOKEN_EVERY_MS = 10;
const TOKENS = 45;
const CAP = 3;

const clock = () => performance.timeOrigin + performance.now();
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}
const round1 = (n: number) => Number(n.toFixed(1));

// Child processes die with this one, whatever happens.
const children: Array<{ kill: () => void }> = [];
const cleanUp = () => children.forEach((child) => child.kill());
process.on('exit', cleanUp);
process.on('uncaughtException', (error) => {
  process.stderr.write(`${error.stack ?? String(error)}\n`);
  process.exit(1);
});

// The upstream, in its own process.
const upstream = fork(new URL('./lib/fake-upstream.ts', import.meta.url), {
  execArgv: ['--import', 'tsx'],
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
children.push({ kill: () => upstream.kill() });
const nextMessage = <T>() => new Promise<T>((resolve) => upstream.once('message', resolve));
const { baseURL } = await nextMessage<{ baseURL: string }>();
const behaviour: Behaviour = {
  kind: 'stream',
  tokens: Array.from({ length: TOKENS }, (_, i) => ` word${i}`),
  firstDelayMs: FIRST_TOKEN_MS,
  delayMs: TOKEN_EVERY_MS,
};
upstream.send({ type: 'behaviour', behaviour });
await nextMessage();

const database = await benchDatabase('parley_bench_fairness');
const server = await startBenchServer(
  database,
  {
    AI_PROVIDER: 'openai',
    OPENAI_BASE_URL: baseURL,
    OPENAI_API_KEY: 'sk-bench',
    AI_MODEL: 'fake-model',
    AI_TITLES: 'false',
    AI_CONCURRENCY: '1',
    AI_MAX_PENDING_PER_USER: String(CAP),
    JWT_ACCESS_TTL: '1h',
  },
  { realtime: true },
);

async function connectClient(token: string): Promise<Socket> {
  const socket = io(server.url, { auth: { token, seedEvents: false }, transports: ['websocket'] });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return socket;
}

interface Sent {
  ok: boolean;
  data?: { generation?: { id: string } };
  error?: { code: string };
}
const send = (socket: Socket, conversationId: string, content: string) =>
  new Promise<Sent>((resolve) =>
    socket.emit('message:send', { conversationId, content }, (result: Sent) => resolve(result)),
  );

/** Sends and resolves with the time to the first delta and to the end of its answer. */
async function timedAnswer(socket: Socket, conversationId: string) {
  const sentAt = clock();
  const mine: { generationId?: string | undefined } = {};
  let firstAt = 0;
  const early: Array<[string, number]> = [];
  const done = new Promise<number>((resolve) => {
    const onDelta = (p: { generationId: string }) => {
      if (p.generationId === mine.generationId) firstAt ||= clock();
      else if (!mine.generationId) early.push([p.generationId, clock()]);
    };
    const onEnd = (p: { generationId: string }) => {
      if (p.generationId !== mine.generationId) return;
      socket.off('ai:stream:delta', onDelta);
      socket.off('ai:stream:end', onEnd);
      resolve(clock());
    };
    socket.on('ai:stream:delta', onDelta);
    socket.on('ai:stream:end', onEnd);
  });
  const ack = await send(socket, conversationId, 'Tell me something');
  const generationId = ack.data?.generation?.id;
  if (!generationId) throw new Error(`send refused: ${JSON.stringify(ack.error)}`);
  mine.generationId = generationId;
  firstAt ||= early.find(([id]) => id === generationId)?.[1] ?? 0;
  const endedAt = await done;
  return { ttft: firstAt - sentAt, duration: endedAt - sentAt };
}

const second = await userWithConversation(server, 'second');
const secondSocket = await connectClient(second.token);

// Idle: the second user alone (after a warm-up).
const idle: number[] = [];
const durations: number[] = [];
for (let i = 0; i < ROUNDS + 3; i++) {
  const { ttft, duration } = await timedAnswer(secondSocket, second.conversationId);
  if (i < 3) continue;
  idle.push(ttft);
  durations.push(duration);
}

// Loaded: the first user keeps CAP answers running or waiting, sending another as each ends.
const first = await userWithConversation(server, 'first');
const firstSocket = await connectClient(first.token);
let loading = true;
let refused = 0;
firstSocket.on('ai:stream:end', () => {
  if (loading)
    void send(firstSocket, first.conversationId, 'More, please').then((r) => {
      if (!r.ok) refused++;
    });
});
for (let i = 0; i < CAP; i++) await send(firstSocket, first.conversationId, 'Go on');
await pause(300);
const loaded: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  loaded.push((await timedAnswer(secondSocket, second.conversationId)).ttft);
  await pause(Math.random() * 200); // land at different points of the first user's answers
}
loading = false;

const answerMs = percentile(durations, 0.5);
const report = {
  settings: { AI_CONCURRENCY: 1, AI_MAX_PENDING_PER_USER: CAP, answerTokens: TOKENS },
  database: process.env.BENCH_DATABASE_URL ? 'postgres' : 'pglite',
  oneAnswerMs: round1(answerMs),
  secondUserTtftMs: {
    idle: { p50: round1(percentile(idle, 0.5)), max: round1(Math.max(...idle)) },
    firstUsersQueueFull: { p50: round1(percentile(loaded, 0.5)), max: round1(Math.max(...loaded)) },
  },
  addedByTheFullQueueMs: round1(Math.max(...loaded) - percentile(idle, 0.5)),
  target: `max(loaded) − p50(idle) ≤ one answer (${round1(answerMs)} ms); a FIFO queue would add ~${round1(CAP * answerMs)} ms`,
  firstUserSendsRefusedAtTheCap: refused,
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
const ok = report.addedByTheFullQueueMs <= answerMs;
process.stdout.write(
  `second user's TTFT: idle p50 ${report.secondUserTtftMs.idle.p50} ms, with the first user's queue full ` +
    `p50 ${report.secondUserTtftMs.firstUsersQueueFull.p50} / max ${report.secondUserTtftMs.firstUsersQueueFull.max} ms; ` +
    `added ≤ ${report.addedByTheFullQueueMs} ms vs one answer ${report.oneAnswerMs} ms — ${ok ? 'target met' : 'TARGET MISSED'}\n`,
);

firstSocket.disconnect();
secondSocket.disconnect();
await pause(800); // the first user's last answers finish
await server.close();
await database.close();
process.exit(ok ? 0 : 1);
