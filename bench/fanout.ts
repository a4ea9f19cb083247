// Fan-out: 1,000 authenticated Socket.IO clients in one conversation on one process, messages
// sent at a steady rate; deliveries/s and send→receive latency against a bare `ws` server
// broadcasting the same payloads to 1,000 clients in the same run; and the server's heap per
// idle connected client.
//
//   node --expose-gc --import tsx bench/fanout.ts
//   env: BENCH_CLIENTS (1000), BENCH_MESSAGES (300), BENCH_RATE (messages/s, 60), BENCH_DATABASE_URL,
//        BENCH_SEED_EVENTS=0 (clients opt out of the seed's message:received alias)
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'drizzle-orm';
import { WebSocketServer } from 'ws';
import { createApp } from '../src/app.js';
import { parseEnv } from '../src/config/env.js';
import { createContainer } from '../src/container.js';
import { openDatabase } from '../src/db/client.js';
import { createRealtimeGateway } from '../src/realtime/gateway.js';
import { createId } from '../src/utils/ids.js';

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 1000);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 300);
const RATE = Number(process.env.BENCH_RATE ?? 60);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc --import tsx bench/fanout.ts');

const heap = () => {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
};
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// The server, in this process.
const env = parseEnv({
  LOG_LEVEL: 'error',
  AI_PROVIDER: 'none', // these benchmarks measure messages, not answers
  JWT_SECRET: 'bench-secret-bench-secret-bench-secret-42',
  JWT_ACCESS_TTL: '1h',
  REGISTER_MAX_PER_IP: '1000000',
  MESSAGE_RATE_LIMIT: '1000000',
  ARGON2_MEMORY_KIB: '4096',
  ARGON2_TIME_COST: '1',
  COLLECT_DEFAULT_METRICS: 'false',
  ...(process.env.BENCH_DATABASE_URL ? { DATABASE_URL: process.env.BENCH_DATABASE_URL } : {}),
});
const database = await openDatabase(
  env.DATABASE_URL ? { kind: 'postgres', url: env.DATABASE_URL, poolSize: 10 } : { kind: 'pglite' },
);
await database.migrate();
const container = createContainer({ ...env, JWT_SECRET: env.JWT_SECRET! }, database);
const httpServer = createServer(createApp(container));
const gateway = createRealtimeGateway(httpServer, container);
await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;

// The reference: a bare WebSocket server that relays each message to every client.
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
await new Promise((resolve) => wss.once('listening', resolve));
wss.on('connection', (ws) => {
  ws.on('message', (data) => {
    for (const client of wss.clients) client.send(data);
  });
});
const wsUrl = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;

// Users and one conversation with all of them. Accounts are made in bulk (the API's argon2
// hashing is not what this measures); sessions come from the real login route.
process.stdout.write(`setting up ${CLIENTS} users…\n`);
const passwordHash = await (
  await import('argon2')
).default.hash('bench-password-1', { memoryCost: 4096, timeCost: 1 });
const userIds = Array.from({ length: CLIENTS }, () => createId());
const conversationId = createId();
await database.db.execute(
  sql`insert into conversations (id, title) values (${conversationId}, 'fan-out')`,
);
for (let i = 0; i < CLIENTS; i += 500) {
  const batch = userIds.slice(i, i + 500);
  await database.db.execute(
    sql`insert into users (id, email, password_hash) values ${sql.join(
      batch.map((id) => sql`(${id}, ${`${id}@bench.test`}, ${passwordHash})`),
      sql`, `,
    )}`,
  );
  await database.db.execute(
    sql`insert into conversation_participants (id, conversation_id, user_id, role) values ${sql.join(
      batch.map(
        (id, j) =>
          sql`(${createId()}, ${conversationId}, ${id}, ${i + j === 0 ? 'OWNER' : 'MEMBER'})`,
      ),
      sql`, `,
    )}`,
  );
}
const tokens: string[] = [];
for (let i = 0; i < CLIENTS; i += 25) {
  const batch = await Promise.all(
    userIds.slice(i, i + 25).map(async (id) => {
      const response = await fetch(`${url}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: `${id}@bench.test`, password: 'bench-password-1' }),
      });
      return ((await response.json()) as { data: { accessToken: string } }).data.accessToken;
    }),
  );
  tokens.push(...batch);
}

const clients: ChildProcess = fork(new URL('./lib/fanout-clients.ts', import.meta.url), {
  execArgv: ['--import', 'tsx'],
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
function ask<T>(command: object): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type: string; message?: string }) => {
      if (message.type === 'error') reject(new Error(message.message));
      else {
        clients.off('message', onMessage);
        resolve(message as T);
      }
    };
    clients.on('message', onMessage);
    clients.send(command);
  });
}

interface Result {
  deliveries: number;
  expected: number;
  deliveriesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  payloadBytes?: number;
}

// Heap per idle client: the server's heap with no client, then with all of them connected.
const before = heap();
await ask({ type: 'connect-io', url, tokens });
await pause(3_000); // presence notices and joins settle
const after = heap();
const heapPerClient = (after - before) / CLIENTS;

const ours = await ask<Result>({
  type: 'run-io',
  conversationId,
  count: MESSAGES,
  perSecond: RATE,
});
await ask({ type: 'connect-ws', url: wsUrl, clients: CLIENTS });
const bare = await ask<Result>({
  type: 'run-ws',
  count: MESSAGES,
  perSecond: RATE,
  payloadBytes: ours.payloadBytes ?? 800,
});

for (const [name, run] of [
  ['Socket.IO', ours],
  ['bare ws', bare],
] as const) {
  if (run.deliveries < run.expected) {
    process.stdout.write(
      `WARNING: ${name} lost ${run.expected - run.deliveries} of ${run.expected} deliveries\n`,
    );
  }
}
const report = {
  clients: CLIENTS,
  messages: MESSAGES,
  ratePerSecond: RATE,
  payloadBytes: ours.payloadBytes,
  socketIo: ours,
  bareWs: bare,
  ratio: Number((ours.deliveriesPerSecond / bare.deliveriesPerSecond).toFixed(3)),
  heapBytesPerIdleClient: Math.round(heapPerClient),
  targets: { ratio: '≥ 0.5', heapBytesPerIdleClient: '≤ 20,480' },
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(
  `deliveries/s ${Math.round(ours.deliveriesPerSecond)} (Socket.IO) vs ${Math.round(bare.deliveriesPerSecond)} (bare ws): ratio ${report.ratio}; ` +
    `p50/p99 ${ours.p50Ms.toFixed(1)}/${ours.p99Ms.toFixed(1)} ms vs ${bare.p50Ms.toFixed(1)}/${bare.p99Ms.toFixed(1)} ms; ` +
    `heap per idle client ${report.heapBytesPerIdleClient} B (target ≤ 20 KB)\n`,
);
clients.send({ type: 'close' });
await pause(500);
wss.close();
await gateway.close();
await database.close();
process.exit(0);
