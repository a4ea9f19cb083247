// Time to first token, bytes on the socket and the event loop under 50 concurrent answers
// (issue 5), against an OpenAI-compatible upstream in another process that sends its first
// token 50 ms after a request and then one every 5 ms.
//
//   npx tsx bench/ttft.ts
//   env: BENCH_ROUNDS (TTFT samples, 40), BENCH_CONCURRENT (50), BENCH_DATABASE_URL (a PostgreSQL
//        server, where the database parley_bench_ttft is made afresh; unset: in-memory PGlite)
//
// 1. Added time to first token: a client (in its own process) sends `message:send` on its socket
//    and waits for the first `ai:stream:delta`. From that time the upstream's own first-token time (request
//    received → first token written, measured in the upstream's process on the same clock) is
//    subtracted: what is left is ours (the send, the rows written before the request, the
//    request, parsing the stream, the event). Target: median ≤ 10 ms.
// 2. Bytes for a 2,000-token answer: everything the server writes to that client's TCP
//    connection from the send to the end (a byte-counting proxy sits between them), against
//    the answer's own UTF-8 bytes. Target: ≤ 1.3 × answer + 5 KB.
// 3. 50 answers at once (1,000 tokens each, 50 clients): event-loop delay p99 of this process,
//    which holds the server and the 50 clients. Target: < 30 ms.
import { fork, type ChildProcess } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createServer as createTcpServer, connect, type AddressInfo } from 'node:net';
import { io, type Socket } from 'socket.io-client';
import type { Behaviour } from '../test/support/fake-openai.js';
import { benchDatabase } from './lib/bench-db.js';
import { startBenchServer, userWithConversation } from './lib/bench-server.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 40);
const CONCURRENT = Number(process.env.BENCH_CONCURRENT ?? 50);
const FIRST_TOKEN_MS = 50;
const TOKEN_EVERY_MS = 5;

const clock = () => performance.timeOrigin + performance.now();
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values: number[]) => percentile(values, 0.5);
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}

/**
 * English-like tokens, about 5 bytes each as OpenAI's tokenizers cut English prose: words drawn
 * by a seeded generator from a few hundred, so the text does not repeat itself.
 */
const VOCABULARY = (
  'the of and to in is that it for as with was on be by this are from or at an not have which ' +
  'but all were when we there can more one has their if will would about into out time only ' +
  'other new some could these two may first then do any like my now over such our man me even ' +
  'most made after also did many before must through back years where much your way well down ' +
  'should because each just those people how too little state good very make world still own ' +
  'see men work long get here between both life being under never day same another know while ' +
  'last might us great old year off come since against go came right used take three states ' +
  'himself few house use during without again place american around however home small found ' +
  'thought went say part once general high upon school every does got united left number course ' +
  'war until always away something fact though water less public put think almost hand enough ' +
  'far took head yet government system better set told nothing night end why called didn eyes ' +
  'find going look asked later knew point next program city business give group toward young ' +
  'days let room president side social given present several order national possible rather ' +
  'second face per among form important often things looked early white case john become large ' +
  'big need four within felt along children saw best church ever least power development light ' +
  'model answer stream token server client message socket conversation database request latency'
).split(' ');
function answerTokens(count: number): string[] {
  let seed = 0x9e3779b9; // mulberry32: the same answer on every run
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Array.from({ length: count }, (_, i) => {
    const word = VOCABULARY[Math.floor(random() * VOCABULARY.length)]!;
    const end = random() < 0.08 ? (random() < 0.7 ? '.' : ',') : '';
    return `${i === 0 ? '' : ' '}${word}${end}`;
  });
}

// Whatever happens, no helper process outlives the benchmark.
const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});
process.on('uncaughtException', (error) => {
  process.stderr.write(`${error.stack ?? String(error)}\n`);
  process.exit(1);
});

/** A helper process of this benchmark: each command answered by its next message. */
function helper(file: string) {
  const child = fork(new URL(file, import.meta.url), {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.push(child);
  const next = <T>() =>
    new Promise<T>((resolve, reject) =>
      child.once('message', (message: T & { type: string; message?: string }) =>
        message.type === 'error' ? reject(new Error(message.message)) : resolve(message),
      ),
    );
  return {
    next,
    ask<T>(command: object): Promise<T> {
      const answer = next<T>();
      child.send(command);
      return answer;
    },
    close: () => child.send({ type: 'close' }),
  };
}

// The upstream, in its own process.
const upstream = helper('./lib/fake-upstream.ts');
const askUpstream = <T>(command: object) => upstream.ask<T>(command);
const { baseURL } = await upstream.next<{ baseURL: string }>();
const streamOf = (tokens: number): Behaviour => ({
  kind: 'stream',
  tokens: answerTokens(tokens),
  firstDelayMs: FIRST_TOKEN_MS,
  delayMs: TOKEN_EVERY_MS,
  usage: { prompt: 20, completion: tokens },
});
interface UpstreamTiming {
  receivedAt: number;
  firstTokenAt?: number;
  completed: boolean;
}
const timings = async () =>
  (await askUpstream<{ requests: UpstreamTiming[] }>({ type: 'timings' })).requests;

// The server, in this process.
const database = await benchDatabase('parley_bench_ttft');
const server = await startBenchServer(
  database,
  {
    AI_PROVIDER: 'openai',
    OPENAI_BASE_URL: baseURL,
    OPENAI_API_KEY: 'sk-bench',
    AI_MODEL: 'fake-model',
    AI_TITLES: 'false',
    AI_MAX_OUTPUT_TOKENS: '4096',
    // Every answer of part 3 generates at once (none waits for a turn), one each per user.
    AI_CONCURRENCY: String(CONCURRENT),
    AI_MAX_PENDING_PER_USER: '3',
    JWT_ACCESS_TTL: '1h',
  },
  { realtime: true },
);

/** A TCP proxy in front of the server counting what the server writes to the client. */
let bytesToClient = 0;
const proxy = createTcpServer((client) => {
  const target = connect(Number(new URL(server.url).port), '127.0.0.1');
  client.pipe(target);
  target.on('data', (data: Buffer) => (bytesToClient += data.length));
  target.pipe(client);
  client.on('error', () => target.destroy());
  target.on('error', () => client.destroy());
});
await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;

async function connectClient(url: string, token: string): Promise<Socket> {
  const socket = io(url, { auth: { token, seedEvents: false }, transports: ['websocket'] });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return socket;
}

/** Sends a message and resolves with when it was sent, the first delta came, and the end came. */
function askForAnswer(socket: Socket, conversationId: string, content: string) {
  return new Promise<{ sentAt: number; firstDeltaAt: number; text: string; deltas: number }>(
    (resolve, reject) => {
      let firstDeltaAt = 0;
      let text = '';
      let deltas = 0;
      const onDelta = (payload: { delta: string }) => {
        firstDeltaAt ||= clock();
        text += payload.delta;
        deltas++;
      };
      const onEnd = (payload: { status: string }) => {
        socket.off('ai:stream:delta', onDelta);
        socket.off('ai:stream:end', onEnd);
        if (payload.status !== 'SENT') reject(new Error(`answer ${payload.status}`));
        else resolve({ sentAt, firstDeltaAt, text, deltas });
      };
      socket.on('ai:stream:delta', onDelta);
      socket.on('ai:stream:end', onEnd);
      const sentAt = clock();
      socket.emit('message:send', { conversationId, content });
    },
  );
}

// 1. Added time to first token, one answer at a time, each in a new conversation, asked by a
//    client in its own process (as a real client is: its work and the server's do not share
//    one event loop).
const owner = await userWithConversation(server, 'ttft');
const client = helper('./lib/ttft-client.ts');
await client.ask({ type: 'connect', url: server.url, token: owner.token });
await askUpstream({ type: 'behaviour', behaviour: streamOf(20) });
const added: number[] = [];
const upstreamOwn: number[] = [];
for (let round = 0; round < ROUNDS + 5; round++) {
  const conversation = await server.request<{ data: { id: string } }>(
    'POST',
    '/api/conversations',
    { title: `ttft ${round}` },
    owner.token,
  );
  const before = (await timings()).length;
  const answer = await client.ask<{ sentAt: number; firstDeltaAt: number; status: string }>({
    type: 'ask',
    conversationId: conversation.body.data.id,
    content: 'Tell me a short story',
  });
  if (answer.status !== 'SENT') throw new Error(`answer ${answer.status}`);
  const timing = (await timings())[before]!;
  const own = timing.firstTokenAt! - timing.receivedAt;
  if (round < 5) continue; // warm-up: JIT, prepared statements, the SDK's connection pool
  upstreamOwn.push(own);
  added.push(answer.firstDeltaAt - answer.sentAt - own);
}

// 2. Bytes on the socket for one 2,000-token answer.
await askUpstream({ type: 'behaviour', behaviour: streamOf(2_000) });
const expectedText = answerTokens(2_000).join('');
const counted = await connectClient(proxyUrl, owner.token);
await pause(200);
const bytesBefore = bytesToClient;
const long = await askForAnswer(counted, owner.conversationId, 'Tell me a long story');
await pause(300); // anything the server still sends for this answer
const socketBytes = bytesToClient - bytesBefore;
counted.disconnect();
if (long.text !== expectedText) throw new Error('the deltas joined are not the answer');
const answerBytes = Buffer.byteLength(expectedText, 'utf8');

// 3. Fifty answers at once, each to its own client.
await askUpstream({ type: 'behaviour', behaviour: streamOf(1_000) });
const rooms = await Promise.all(
  Array.from({ length: CONCURRENT }, (_, i) => userWithConversation(server, `load${i}`)),
);
const loadClients = await Promise.all(rooms.map((room) => connectClient(server.url, room.token)));
await pause(500);
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
const started = clock();
const answers = await Promise.all(
  rooms.map((room, i) => askForAnswer(loadClients[i]!, room.conversationId, 'Go on')),
);
const elapsed = clock() - started;
loop.disable();
const upstreamTimings = await timings();

const report = {
  addedTimeToFirstTokenMs: {
    samples: added.length,
    median: Number(median(added).toFixed(2)),
    p90: Number(percentile(added, 0.9).toFixed(2)),
    upstreamOwnMedian: Number(median(upstreamOwn).toFixed(2)),
    target: '≤ 10',
  },
  socketBytes: {
    answerTokens: 2_000,
    answerBytes,
    socketBytes,
    limit: Math.round(1.3 * answerBytes + 5_120),
    perAnswerByte: Number((socketBytes / answerBytes).toFixed(3)),
    deltaEvents: long.deltas,
  },
  concurrent: {
    generations: CONCURRENT,
    tokensEach: 1_000,
    allCompleted:
      answers.every((a) => a.text === answerTokens(1_000).join('')) &&
      upstreamTimings.length === CONCURRENT &&
      upstreamTimings.every((t) => t.completed),
    wallSeconds: Number((elapsed / 1000).toFixed(2)),
    eventLoopDelayMs: {
      p50: Number((loop.percentile(50) / 1e6).toFixed(2)),
      p99: Number((loop.percentile(99) / 1e6).toFixed(2)),
      max: Number((loop.max / 1e6).toFixed(2)),
    },
    target: 'p99 < 30',
  },
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
const ok =
  report.addedTimeToFirstTokenMs.median <= 10 &&
  socketBytes <= report.socketBytes.limit &&
  report.concurrent.eventLoopDelayMs.p99 < 30 &&
  report.concurrent.allCompleted;
process.stdout.write(
  `added TTFT median ${report.addedTimeToFirstTokenMs.median} ms (target ≤ 10); ` +
    `socket bytes ${socketBytes} for a ${answerBytes}-byte answer (limit ${report.socketBytes.limit}); ` +
    `${CONCURRENT} at once: loop p99 ${report.concurrent.eventLoopDelayMs.p99} ms (target < 30) — ${ok ? 'all targets met' : 'TARGET MISSED'}\n`,
);

for (const socket of loadClients) socket.disconnect();
proxy.close();
client.close();
upstream.close();
await server.close();
await database.close();
process.exit(ok ? 0 : 1);
