// Login throughput against the bare argon2id verify rate with the same parameters, in the same
// run, plus the event-loop delay while the burst is in flight (hashing must never block it).
//
//   npx tsx bench/auth-login.ts            # embedded PGlite in memory
//   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx bench/auth-login.ts
//
// Environment: BENCH_CONCURRENCY (50), BENCH_ROUNDS (6).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import argon2 from 'argon2';
import { createApp } from '../src/app.js';
import { parseEnv } from '../src/config/env.js';
import { createContainer } from '../src/container.js';
import { openDatabase } from '../src/db/client.js';

const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 50);
const rounds = Number(process.env.BENCH_ROUNDS ?? 6);
const databaseUrl = process.env.BENCH_DATABASE_URL;

// Production defaults for everything that matters here (argon2 cost included).
const env = parseEnv({
  AI_PROVIDER: 'none',
  LOG_LEVEL: 'error',
  JWT_SECRET: 'bench-secret-bench-secret-bench-secret-42',
  LOGIN_MAX_FAILURES_PER_IP: '1000000',
  REGISTER_MAX_PER_IP: '1000000',
  ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
});
const config = Object.freeze({ ...env, JWT_SECRET: env.JWT_SECRET! });

async function post(url: string, body: unknown): Promise<number> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response.status;
}

/** Runs `task` for indices 0..n-1 with `concurrency` in flight; returns elapsed ms. */
async function burst(n: number, task: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) await task(next++);
    }),
  );
  return performance.now() - started;
}

async function main() {
  const database = await openDatabase(
    databaseUrl ? { kind: 'postgres', url: databaseUrl, poolSize: 20 } : { kind: 'pglite' },
  );
  await database.migrate();
  const container = createContainer(config, database);
  const server = createServer(createApp(container));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const run = Date.now().toString(36);
  const users = Array.from({ length: concurrency }, (_, i) => ({
    email: `bench-${run}-${i}@example.test`,
    password: `bench-password-${i}`,
  }));
  await burst(users.length, async (i) => {
    const status = await post(`${base}/api/auth/register`, users[i]);
    if (status !== 201) throw new Error(`register failed: ${status}`);
  });

  // Reference: the bare verify rate of the same hash parameters, same concurrency, same process.
  const options = {
    type: argon2.argon2id as 2,
    memoryCost: config.ARGON2_MEMORY_KIB,
    timeCost: config.ARGON2_TIME_COST,
    parallelism: 1,
  };
  const hash = await argon2.hash('reference-password', options);
  const total = concurrency * rounds;
  await burst(concurrency, () => argon2.verify(hash, 'reference-password').then(() => undefined)); // warm-up
  const hashMs = await burst(total, async () => {
    await argon2.verify(hash, 'reference-password');
  });

  // Ours: full HTTP logins (validation, throttle check, lookup, verify, session insert, JWT).
  await burst(concurrency, async (i) => void (await post(`${base}/api/auth/login`, users[i]))); // warm-up
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const loginMs = await burst(total, async (i) => {
    const status = await post(`${base}/api/auth/login`, users[i % users.length]);
    if (status !== 200) throw new Error(`login failed: ${status}`);
  });
  loop.disable();

  const hashesPerSecond = (total / hashMs) * 1000;
  const loginsPerSecond = (total / loginMs) * 1000;
  const p99 = loop.percentile(99) / 1e6;
  const report = {
    database: database.kind,
    argon2: `argon2id m=${options.memoryCost} KiB t=${options.timeCost} p=1`,
    concurrency,
    logins: total,
    bareVerifiesPerSecond: Number(hashesPerSecond.toFixed(1)),
    loginsPerSecond: Number(loginsPerSecond.toFixed(1)),
    ratio: Number((loginsPerSecond / hashesPerSecond).toFixed(3)),
    eventLoopDelayP99Ms: Number(p99.toFixed(2)),
    eventLoopDelayMaxMs: Number((loop.max / 1e6).toFixed(2)),
    targetP99Ms: 20,
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(
    `logins/s ${report.loginsPerSecond} vs bare argon2 verifies/s ${report.bareVerifiesPerSecond}: ` +
      `ratio ${report.ratio}; event-loop p99 ${report.eventLoopDelayP99Ms} ms (target < 20 ms)\n`,
  );

  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await container.close();
}

await main();
