// Scale-out (issue 9, acceptance 8): what running several API instances and a worker on one
// Redis costs, each figure against a reference measured in the same run.
//
//   npx tsx bench/cluster.ts
//   env: BENCH_DATABASE_URL (PostgreSQL server, default postgres://postgres@127.0.0.1:5432/postgres;
//        fresh databases parley_bench_cluster*), BENCH_RECEIVERS (240), BENCH_MESSAGES (400),
//        BENCH_RATE (messages/s, 50), BENCH_LATENCY_MESSAGES (600), BENCH_TTFT_ROUNDS (30),
//        BENCH_CPU_ORDER (instance counts of the CPU runs, 1,2,3,3,2,1), BENCH_NODE_ARGS (Node's
//        options for the cluster's API instances, e.g. --cpu-prof)
//
// 1. Send → receive latency: REST sends on instance A at a steady rate into a conversation with
//    the AI off; a receiver socket on A and one on B. p99 of B (the message crossed Redis)
//    against A. Target ratio ≤ 2.
// 2. Time to first token: POST → first `ai:stream:delta` through a worker (API with
//    WORKERS_INLINE=false + `node dist/worker.js`) against inline (an API with WORKERS_INLINE=true
//    on a Redis of its own), rounds alternating. Target median ratio ≤ 1.5. An API without
//    REDIS_URL is measured alongside, for reference.
// 3. CPU per delivered message with 1, 2 and 3 instances (in the order 1 2 3 3 2 1): receivers
//    spread evenly over the instances in one conversation; CPU of every API instance and of
//    redis-server (/proc) over deliveries. Target: 2 and 3 instances within 1.3× of one.
// 4. Redis commands (MONITOR, so those sent and those run inside scripts apart) per message, and
//    per delta: answers of 1 and of 40 large tokens, the difference over the difference in
//    deltas, so what every answer costs once cancels out.
//
// Everything runs as deployed: `node dist/server.js` and `node dist/worker.js` (built first),
// PostgreSQL, redis-servers of the benchmark's own, the AI set to an OpenAI-compatible fake
// upstream in its own process (the chat-completions SSE format). Children die with it.
import { execFileSync, fork } from 'node:child_process';
import { loadavg } from 'node:os';
import type { Socket } from 'socket.io-client';
import type { Behaviour } from '../test/support/fake-openai.js';
import { freshDatabase, percentile } from './lib/bench-db.js';
import {
  cpuSeconds,
  cpuTimes,
  ownChild,
  startApi,
  startWorker,
  type AppProcess,
} from './lib/bench-processes.js';
import { startBenchRedis, type BenchRedis, type Monitored } from './lib/bench-redis.js';
import {
  clock,
  connectMany,
  connectSocket,
  steady,
  until,
  waitQuiet,
} from './lib/cluster-sockets.js';

const RECEIVERS = Number(process.env.BENCH_RECEIVERS ?? 240);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 400);
const RATE = Number(process.env.BENCH_RATE ?? 50);
const LATENCY_MESSAGES = Number(process.env.BENCH_LATENCY_MESSAGES ?? 600);
const TTFT_ROUNDS = Number(process.env.BENCH_TTFT_ROUNDS ?? 30);
const SENDERS = 4;
const FIRST_TOKEN_MS = 50;
const LONG_TOKENS = 40;
const WARM_UP_MESSAGES = 100;
/** Node's options for the cluster's API instances, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". */
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
/** The instance counts of the CPU runs, in order. */
const CPU_ORDER = (process.env.BENCH_CPU_ORDER ?? '1,2,3,3,2,1').split(',').map(Number);

const began = performance.now();
const loadAtStart = loadavg()[0]!;
const log = (line: string) =>
  process.stderr.write(`[${((performance.now() - began) / 1000).toFixed(1)} s] ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ms = (value: number) => `${value.toFixed(1)} ms`;

// What is measured is what `npm start` runs: built from this checkout now.
execFileSync('node', ['scripts/build.mjs'], { stdio: 'inherit' });

// The upstream, in its own process (its work is not any instance's).
const upstream = fork(new URL('./lib/fake-upstream.ts', import.meta.url), {
  execArgv: ['--import', 'tsx'],
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
ownChild(upstream);
const upstreamReply = <T>() =>
  new Promise<T>((resolve) => upstream.once('message', (message: T) => resolve(message)));
const { baseURL } = await upstreamReply<{ baseURL: string }>();
async function upstreamDoes(behaviour: Behaviour) {
  upstream.send({ type: 'behaviour', behaviour });
  await upstreamReply();
}
interface UpstreamTiming {
  receivedAt: number;
  firstTokenAt?: number;
}
async function upstreamTimings(): Promise<UpstreamTiming[]> {
  upstream.send({ type: 'timings' });
  return (await upstreamReply<{ requests: UpstreamTiming[] }>()).requests;
}

/** Every setting that changes a figure, set here; none inherited from the shell. */
function appEnv(databaseUrl: string, redis: BenchRedis | undefined, workersInline: boolean) {
  return {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    JWT_SECRET: 'bench-secret-bench-secret-bench-secret-42',
    JWT_ACCESS_TTL: '1h',
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_SIZE: '10',
    ...(redis ? { REDIS_URL: redis.url } : {}),
    WORKERS_INLINE: String(workersInline),
    COLLECT_DEFAULT_METRICS: 'true',
    MESSAGE_RATE_LIMIT: '1000000000',
    REGISTER_MAX_PER_IP: '1000000',
    ARGON2_MEMORY_KIB: '4096',
    ARGON2_TIME_COST: '1',
    AI_PROVIDER: 'openai',
    OPENAI_BASE_URL: baseURL,
    OPENAI_API_KEY: 'sk-bench',
    AI_MODEL: 'bench-model',
    AI_TITLES: 'false',
    AI_CONCURRENCY: '32',
    AI_MAX_PENDING_PER_USER: '3',
  };
}

async function call<T>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<T> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return (JSON.parse(text) as { data: T }).data;
}

interface User {
  token: string;
  userId: string;
}
let registered = 0;
async function registerUsers(base: string, count: number): Promise<User[]> {
  const users: User[] = [];
  for (let i = 0; i < count; i += 10) {
    const batch = Array.from({ length: Math.min(10, count - i) }, async () => {
      const data = await call<{ accessToken: string; user: { id: string } }>(
        base,
        'POST',
        '/api/auth/register',
        { email: `u${(registered += 1)}-${Date.now()}@bench.test`, password: 'bench-password-1' },
      );
      return { token: data.accessToken, userId: data.user.id };
    });
    users.push(...(await Promise.all(batch)));
  }
  return users;
}

/** A conversation of `owner` with `members` (100 at its creation, the rest added one by one). */
async function conversationOf(base: string, owner: User, members: User[], aiEnabled: boolean) {
  const { id } = await call<{ id: string }>(
    base,
    'POST',
    '/api/conversations',
    {
      title: aiEnabled ? 'ai on' : 'ai off',
      settings: { aiEnabled },
      participantIds: members.slice(0, 100).map((m) => m.userId),
    },
    owner.token,
  );
  const rest = members.slice(100);
  for (let i = 0; i < rest.length; i += 20) {
    await Promise.all(
      rest
        .slice(i, i + 20)
        .map((m) =>
          call(
            base,
            'POST',
            `/api/conversations/${id}/participants`,
            { userId: m.userId },
            owner.token,
          ),
        ),
    );
  }
  return id;
}

const sendMessage = (
  base: string,
  sender: User,
  conversationId: string,
  content: string,
  extra: Record<string, unknown> = {},
) =>
  call<{ message: { id: string }; generation?: { id: string } }>(
    base,
    'POST',
    `/api/chat/conversations/${conversationId}/messages`,
    { content, ...extra },
    sender.token,
  );

// ---------------------------------------------------------------------------------------------
// The cluster: PostgreSQL, one Redis, instance A (B and C join later). No worker here: the
// conversations of parts 1, 3 and 4a have the AI off.
log('setting up…');
const redis = await startBenchRedis();
const main = await freshDatabase('parley_bench_cluster');
await main.database.close();
const clusterEnv = appEnv(main.url, redis, false);
const instances: AppProcess[] = [await startApi('A', clusterEnv, NODE_ARGS)];
const a = instances[0]!.url!;

const senders = await registerUsers(a, SENDERS);
const receivers = await registerUsers(a, RECEIVERS);
const [nearUser, farUser] = await registerUsers(a, 2);
const fanConversation = await conversationOf(
  a,
  senders[0]!,
  [...senders.slice(1), ...receivers],
  false,
);
const latencyConversation = await conversationOf(
  a,
  senders[0]!,
  [...senders.slice(1), nearUser!, farUser!],
  false,
);

// ---------------------------------------------------------------------------------------------
// 3. CPU per delivered message, with the instances there are now.
interface CpuRun {
  instances: number;
  deliveries: number;
  apiCpuSeconds: number;
  redisCpuSeconds: number;
  microsPerDelivery: number;
  publishesPerMessage: number;
}

const cpuOf = (processes: AppProcess[]) => ({
  api: processes.reduce((sum, p) => sum + cpuSeconds(p.pid), 0),
  redis: cpuSeconds(redis.pid),
});

async function fanOut(count: number, offset: number): Promise<void> {
  await steady(count, RATE, async (i) => {
    await sendMessage(a, senders[i % SENDERS]!, fanConversation, `fan-out message ${offset + i}`);
  });
}

async function cpuPerDelivery(warmUp = WARM_UP_MESSAGES): Promise<CpuRun> {
  const k = instances.length;
  log(`CPU per delivery: ${RECEIVERS} receivers over ${k} instance(s)…`);
  const sockets = await connectMany(
    receivers.map((r) => r.token),
    (i) => instances[i % k]!.url!,
  );
  let delivered = 0;
  for (const socket of sockets) {
    socket.on('message:new', (payload: { conversationId: string }) => {
      if (payload.conversationId === fanConversation) delivered += 1;
    });
  }
  // A warm-up (a new instance's code is cold), then the servers at rest (the presence
  // broadcasts of the connects are over).
  await fanOut(warmUp, 0);
  await until(() => delivered >= warmUp * RECEIVERS, 'the warm-up deliveries');
  await waitQuiet();
  delivered = 0;
  const calls = await redis.commandCalls();
  const before = cpuOf(instances);
  const split = instances.map((p) => cpuTimes(p.pid));
  await fanOut(MESSAGES, warmUp);
  await until(() => delivered >= MESSAGES * RECEIVERS, 'the deliveries');
  const after = cpuOf(instances);
  const publishes = (await redis.commandCalls()).get('publish')! - (calls.get('publish') ?? 0);
  log(
    `  CPU s: ${instances
      .map((p, i) => {
        const now = cpuTimes(p.pid);
        return `${p.name} user ${(now.user - split[i]!.user).toFixed(2)} sys ${(now.system - split[i]!.system).toFixed(2)}`;
      })
      .join(', ')}, redis ${(after.redis - before.redis).toFixed(2)}`,
  );
  for (const socket of sockets) socket.disconnect();
  await waitQuiet();
  const api = after.api - before.api;
  const redisCpu = after.redis - before.redis;
  return {
    instances: k,
    deliveries: delivered,
    apiCpuSeconds: api,
    redisCpuSeconds: redisCpu,
    microsPerDelivery: ((api + redisCpu) * 1e6) / delivered,
    publishesPerMessage: publishes / MESSAGES,
  };
}

// ---------------------------------------------------------------------------------------------
// 1. Send → receive latency, the same instance against the other one.
async function sendReceiveLatency() {
  log(`latency: ${LATENCY_MESSAGES} sends on A at ${RATE}/s, receivers on A and B…`);
  const near = await connectSocket(instances[0]!.url!, nearUser!.token);
  const far = await connectSocket(instances[1]!.url!, farUser!.token);
  const sentAt = new Map<string, number>();
  const latencies = { near: [] as number[], far: [] as number[] };
  const listen = (socket: Socket, into: number[]) =>
    socket.on('message:new', (payload: { message: { content: string } }) => {
      const at = sentAt.get(payload.message.content);
      if (at !== undefined) into.push(clock() - at);
    });
  listen(near, latencies.near);
  listen(far, latencies.far);
  await waitQuiet();
  const warmUp = 30;
  await steady(LATENCY_MESSAGES + warmUp, RATE, async (i) => {
    const content = `latency message ${i}`;
    if (i >= warmUp) sentAt.set(content, clock());
    await sendMessage(a, senders[i % SENDERS]!, latencyConversation, content);
  });
  await until(
    () => latencies.near.length >= LATENCY_MESSAGES && latencies.far.length >= LATENCY_MESSAGES,
    'the latency deliveries',
  );
  near.disconnect();
  far.disconnect();
  await waitQuiet();
  const summary = (values: number[]) => ({
    p50: percentile(values, 50),
    p99: percentile(values, 99),
  });
  return { near: summary(latencies.near), far: summary(latencies.far) };
}

// ---------------------------------------------------------------------------------------------
// 4a. Redis per message (AI off), every command recorded: sent by an instance, or run inside
// one of its scripts. Once as the conversations above (the AI off in its settings), once with
// `"ai": false` in the body, which skips taking a place in the answer cap.
async function redisPerMessage(extra: Record<string, unknown>) {
  const monitoring = await redis.monitor();
  const count = 100;
  await steady(count, RATE, async (i) => {
    await sendMessage(a, senders[i % SENDERS]!, latencyConversation, `redis message ${i}`, extra);
  });
  await sleep(300); // the publishes and releases that follow the answer
  return perUnit(await monitoring.stop(), count);
}

const perUnit = ({ sent, inScripts }: Monitored, count: number) => ({
  sent: [...sent].map(([c, n]): [string, number] => [c, n / count]),
  inScripts: [...inScripts].map(([c, n]): [string, number] => [c, n / count]),
});

/** Starts or stops instances (B, C, …) until there are `count`. */
async function scaleTo(count: number) {
  while (instances.length < count) {
    const name = String.fromCharCode(65 + instances.length);
    instances.push(await startApi(name, clusterEnv, NODE_ARGS));
  }
  while (instances.length > count) await instances.pop()!.stop();
}

// 1, 2, 3 instances and back (3, 2, 1): a drift of the machine over the run weighs on each
// count alike. The first run warms A up for longer: it had only registered users so far.
// Parts 1 and 4a run after it, on A and B.
const cpuRuns: CpuRun[] = [];
let latency: Awaited<ReturnType<typeof sendReceiveLatency>> | undefined;
let perMessage:
  Record<'settings' | 'body', Awaited<ReturnType<typeof redisPerMessage>>> | undefined;
for (const [i, count] of CPU_ORDER.entries()) {
  await scaleTo(count);
  cpuRuns.push(await cpuPerDelivery(i === 0 ? 4 * WARM_UP_MESSAGES : WARM_UP_MESSAGES));
  if (i > 0) continue;
  await scaleTo(2);
  latency = await sendReceiveLatency();
  log('Redis commands per message…');
  perMessage = { settings: await redisPerMessage({}), body: await redisPerMessage({ ai: false }) };
}
await scaleTo(1);

// ---------------------------------------------------------------------------------------------
// 2. Time to first token: three deployments side by side, each with its own database (and
// Redis), so none takes another's jobs: A + a worker on the cluster's Redis; an API answering
// inline on a Redis of its own; an API without Redis.
log('time to first token: worker, inline, embedded…');
const worker = await startWorker('worker', { ...clusterEnv, LOG_LEVEL: 'info' });
const inlineRedis = await startBenchRedis();
const inlineDb = await freshDatabase('parley_bench_cluster_inline');
await inlineDb.database.close();
const inline = await startApi('inline', appEnv(inlineDb.url, inlineRedis, true));
const embeddedDb = await freshDatabase('parley_bench_cluster_embedded');
await embeddedDb.database.close();
const embedded = await startApi('embedded', appEnv(embeddedDb.url, undefined, true));

interface Answerer {
  name: string;
  base: string;
  user: User;
  conversationId: string;
  root: string;
  socket: Socket;
  /** First delta time, delta count and end status by generation id. */
  seen: Map<string, { firstDeltaAt: number; deltas: number; status?: string }>;
}

async function answerer(name: string, base: string): Promise<Answerer> {
  const [user] = await registerUsers(base, 1);
  const conversationId = await conversationOf(base, user!, [], true);
  const root = await call<{ message: { id: string } }>(
    base,
    'POST',
    `/api/chat/conversations/${conversationId}/messages`,
    { content: 'Questions follow.', ai: false },
    user!.token,
  );
  const socket = await connectSocket(base, user!.token);
  const seen: Answerer['seen'] = new Map();
  const entry = (generationId: string) => {
    let found = seen.get(generationId);
    if (!found) seen.set(generationId, (found = { firstDeltaAt: 0, deltas: 0 }));
    return found;
  };
  socket.on('ai:stream:delta', ({ generationId }: { generationId: string }) => {
    const found = entry(generationId);
    found.firstDeltaAt ||= clock();
    found.deltas += 1;
  });
  socket.on(
    'ai:stream:end',
    ({ generationId, status }: { generationId: string; status: string }) => {
      entry(generationId).status = status;
    },
  );
  return { name, base, user: user!, conversationId, root: root.message.id, socket, seen };
}

/** One answer: POST → first delta (ms) and its deltas; rejects unless it ended SENT. */
async function ask(who: Answerer) {
  const started = clock();
  const { generation } = await call<{ generation?: { id: string } }>(
    who.base,
    'POST',
    `/api/chat/conversations/${who.conversationId}/messages`,
    // A reply to the first message: every answer's context is the same two messages.
    { content: 'Tell me something', parentId: who.root },
    who.user.token,
  );
  if (!generation) throw new Error(`${who.name}: no answer started`);
  await until(() => who.seen.get(generation.id)?.status !== undefined, `${who.name}'s answer`);
  const result = who.seen.get(generation.id)!;
  if (result.status !== 'SENT') throw new Error(`${who.name}: answer ${result.status}`);
  return {
    ttft: result.firstDeltaAt - started,
    started,
    firstDeltaAt: result.firstDeltaAt,
    deltas: result.deltas,
  };
}

const answerers = [
  await answerer('through a worker', a),
  await answerer('inline', inline.url!),
  await answerer('embedded, no Redis', embedded.url!),
];
await upstreamDoes({
  kind: 'stream',
  tokens: ['Sure', ',', ' here', ' is', ' the', ' answer', '.'],
  firstDelayMs: FIRST_TOKEN_MS,
  delayMs: 1,
});
const ttft = new Map(
  answerers.map((who) => [
    who.name,
    { total: [] as number[], toUpstream: [] as number[], fromUpstream: [] as number[] },
  ]),
);
for (let round = 0; round < TTFT_ROUNDS + 3; round++) {
  for (const who of answerers) {
    const answer = await ask(who);
    const timing = (await upstreamTimings()).at(-1)!;
    if (round < 3) continue; // warm-up: JIT, connections, the worker's first job
    const figures = ttft.get(who.name)!;
    figures.total.push(answer.ttft);
    figures.toUpstream.push(timing.receivedAt - answer.started);
    figures.fromUpstream.push(answer.firstDeltaAt - timing.firstTokenAt!);
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------------------------
// 4b. Redis per delta: answers of one token against answers of LONG_TOKENS tokens of 500 bytes
// 35 ms apart (each its own delta: past the 480-byte target and the 30 ms spacing); the
// difference over the difference in deltas, so what every answer costs once cancels out.
const ANSWERS = 3;
async function redisPerDelta(who: Answerer, server: BenchRedis) {
  const batch = async (tokens: number) => {
    await upstreamDoes({
      kind: 'stream',
      tokens: Array.from(
        { length: tokens },
        (_, i) => `${String(i).padStart(4, '0')} ${'x'.repeat(495)}`,
      ),
      delayMs: 35,
    });
    const monitoring = await server.monitor();
    let deltas = 0;
    for (let i = 0; i < ANSWERS; i++) deltas += (await ask(who)).deltas;
    await sleep(500); // what is written after the end (the answer's last rows, releases)
    return { seen: await monitoring.stop(), deltas };
  };
  const short = await batch(1);
  const long = await batch(LONG_TOKENS);
  const extra = long.deltas - short.deltas;
  const difference = (more: Map<string, number>, less: Map<string, number>) =>
    [...new Set([...more.keys(), ...less.keys()])]
      .map((c): [string, number] => [c, ((more.get(c) ?? 0) - (less.get(c) ?? 0)) / extra])
      .filter(([, n]) => Math.abs(n) >= 0.02);
  return {
    perDelta: {
      sent: difference(long.seen.sent, short.seen.sent),
      inScripts: difference(long.seen.inScripts, short.seen.inScripts),
    },
    perAnswer: perUnit(short.seen, ANSWERS),
    deltasPerLongAnswer: long.deltas / ANSWERS,
  };
}
log('Redis commands per delta…');
const perDelta = {
  worker: await redisPerDelta(answerers[0]!, redis),
  inline: await redisPerDelta(answerers[1]!, inlineRedis),
};

for (const who of answerers) who.socket.disconnect();
await Promise.all([instances[0]!.stop(), worker.stop(), inline.stop(), embedded.stop()]);
upstream.send({ type: 'close' });

// ---------------------------------------------------------------------------------------------
// The report.
const ok = (met: boolean) => (met ? 'met' : 'NOT met');
const median = (values: number[]) => percentile(values, 50);
const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;
const line = (cells: string[], widths: number[]) =>
  cells.map((cell, i) => cell.padEnd(widths[i]!)).join('  ');
const out: string[] = [
  `load average at the start ${loadAtStart.toFixed(2)}, at the end ${loadavg()[0]!.toFixed(2)} (${RECEIVERS} receivers, ${MESSAGES} messages per CPU run)`,
];

const { near, far } = latency!;
const p99Ratio = far.p99 / near.p99;
out.push(
  '',
  `1. Send → receive latency (REST sends on A, ${LATENCY_MESSAGES} at ${RATE}/s, AI off)`,
  `   receiver on A (same instance):  p50 ${ms(near.p50)}  p99 ${ms(near.p99)}`,
  `   receiver on B (other instance): p50 ${ms(far.p50)}  p99 ${ms(far.p99)}`,
  `   p99 ratio B / A: ${p99Ratio.toFixed(2)} (target ≤ 2: ${ok(p99Ratio <= 2)})`,
);

const figures = (name: string) => ttft.get(name)!;
const ttftRatio = median(figures('through a worker').total) / median(figures('inline').total);
out.push(
  '',
  `2. Time to first token (POST → first ai:stream:delta; the upstream's first token ${FIRST_TOKEN_MS} ms after its request; ${TTFT_ROUNDS} rounds each, alternating)`,
);
for (const who of answerers) {
  const f = figures(who.name);
  out.push(
    `   ${who.name.padEnd(20)} median ${ms(median(f.total))}  p90 ${ms(percentile(f.total, 90))}` +
      `   (POST → upstream request ${ms(median(f.toUpstream))}, upstream token → socket ${ms(median(f.fromUpstream))})`,
  );
}
out.push(
  `   median ratio worker / inline: ${ttftRatio.toFixed(2)} (target ≤ 1.5: ${ok(ttftRatio <= 1.5)}; the embedded one is for reference)`,
);

const widths = [10, 11, 12, 14, 14, 18];
out.push(
  '',
  `3. CPU per delivered message (${RECEIVERS} receivers spread evenly over the instances, ${MESSAGES} messages at ${RATE}/s sent on A; runs in the order ${CPU_ORDER.join(' ')})`,
  `   ${line(['instances', 'deliveries', 'API CPU s', 'Redis CPU s', 'µs/delivery', 'PUBLISH/message'], widths)}`,
);
for (const run of cpuRuns) {
  out.push(
    `   ${line(
      [
        String(run.instances),
        String(run.deliveries),
        run.apiCpuSeconds.toFixed(2),
        run.redisCpuSeconds.toFixed(2),
        run.microsPerDelivery.toFixed(1),
        run.publishesPerMessage.toFixed(2),
      ],
      widths,
    )}`,
  );
}
const perCount = (k: number) =>
  mean(cpuRuns.filter((run) => run.instances === k).map((run) => run.microsPerDelivery));
const counts = [...new Set(CPU_ORDER)].sort();
const ratios = counts.filter((k) => k > 1).map((k) => perCount(k) / perCount(1));
out.push(
  `   mean µs per delivery: ${counts.map((k) => `${k} → ${perCount(k).toFixed(1)}`).join(', ')};` +
    (ratios.length
      ? ` ratio to one: ${ratios.map((r) => r.toFixed(2)).join(', ')} (target ≤ 1.3: ${ok(Math.max(...ratios) <= 1.3)})`
      : ''),
);

const sum = (calls: Array<[string, number]>) => calls.reduce((total, [, n]) => total + n, 0);
const detail = (calls: Array<[string, number]>) =>
  [...calls]
    .sort((x, y) => y[1] - x[1])
    .map(([c, n]) => `${c} ${n.toFixed(2)}`)
    .join(', ');
const counted = (what: string, seen: ReturnType<typeof perUnit>) =>
  `   ${what}: ${sum(seen.sent).toFixed(2)} sent (${detail(seen.sent)})\n` +
  `   ${' '.repeat(what.length)}  + ${sum(seen.inScripts).toFixed(2)} commands in scripts (${detail(seen.inScripts)})`;
out.push(
  '',
  '4. Redis commands: those an instance or worker sent, and those its scripts ran',
  counted('per message, the conversation has the AI off', perMessage!.settings),
  counted('per message, "ai": false in the body', perMessage!.body),
  counted('per delta, through a worker', perDelta.worker.perDelta),
  counted('per delta, inline', perDelta.inline.perDelta),
  counted(
    'per answered message of one delta (its send included), through a worker',
    perDelta.worker.perAnswer,
  ),
  counted(
    'per answered message of one delta (its send included), inline',
    perDelta.inline.perAnswer,
  ),
  `   (${perDelta.worker.deltasPerLongAnswer.toFixed(0)} and ${perDelta.inline.deltasPerLongAnswer.toFixed(0)} deltas per ${LONG_TOKENS}-token answer)`,
);
process.stdout.write(`${out.join('\n')}\n`);
await Promise.all([redis.stop(), inlineRedis.stop()]);
process.exit(0); // the sockets' and clients' handles would hold the process open
