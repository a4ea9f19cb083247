// RedisStopSignals (issue 9): a stop sent on one process aborts the generation another process
// runs within 500 ms, even when that process's subscriber is reconnecting (the stop key it polls),
// and a stop sent before the answer began aborts it at register. Each "process" is its own set of
// connections from connectRedis, as in production.
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisStopSignals, STOPS_CHANNEL, stopKey } from '../../src/ai/redis-stop-signals.js';
import { createMetrics } from '../../src/infra/metrics.js';
import { connectRedis, type RedisClients } from '../../src/infra/redis.js';
import { startTestRedis, type TestRedis } from '../support/redis-server.js';

/** The bar: the upstream is aborted within this long of the stop. */
const STOP_BAR_MS = 500;

interface Process {
  clients: RedisClients;
  stops: RedisStopSignals;
  errors: unknown[];
}

const metrics = createMetrics({ collectDefault: false });
let redis: TestRedis;
let open: Process[] = [];

async function startProcess(url: string, pollMs?: number): Promise<Process> {
  const clients = connectRedis(url, metrics, () => undefined);
  await clients.ready();
  const errors: unknown[] = [];
  const stops = new RedisStopSignals({
    command: clients.command,
    subscriber: clients.subscriber,
    onError: (error) => errors.push(error),
    pollMs,
  });
  await stops.start();
  const started = { clients, stops, errors };
  open.push(started);
  return started;
}

/** Resolves with the ms from `since` to the abort; rejects when it takes longer than `ms`. */
function abortedWithin(signal: AbortSignal, since: number, ms = STOP_BAR_MS): Promise<number> {
  if (signal.aborted) return Promise.resolve(Date.now() - since);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not aborted within ${ms} ms`)), ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve(Date.now() - since);
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let nextId = 0;
const generationId = () => `gen-${process.pid}-${++nextId}`;

beforeAll(async () => {
  redis = await startTestRedis();
});

afterEach(async () => {
  await Promise.all(open.map(({ stops }) => stops.close()));
  await Promise.all(open.map(({ clients }) => clients.close()));
  open = [];
});

afterAll(async () => {
  await redis.dispose();
});

describe('RedisStopSignals', () => {
  it('a stop on A aborts the registration on B within 500 ms', async () => {
    const [a, b] = await Promise.all([startProcess(redis.url), startProcess(redis.url)]);
    const id = generationId();
    const { signal } = b.stops.register(id);
    await sleep(50);
    expect(signal.aborted).toBe(false);

    const since = Date.now();
    await a.stops.stop(id);
    expect(await abortedWithin(signal, since)).toBeLessThan(STOP_BAR_MS);
    expect(await a.clients.command.pttl(stopKey(id))).toBeGreaterThan(59 * 60_000);
    expect(b.errors).toEqual([]);
  });

  it('pub/sub alone brings the stop at once (polling as good as off)', async () => {
    const [a, b] = await Promise.all([
      startProcess(redis.url, 60_000),
      startProcess(redis.url, 60_000),
    ]);
    const id = generationId();
    const { signal } = b.stops.register(id);
    await sleep(50);

    const since = Date.now();
    await a.stops.stop(id);
    expect(await abortedWithin(signal, since, 100)).toBeLessThan(100);
  });

  it('aborts a registration of its own process before stop() returns', async () => {
    const a = await startProcess(redis.url);
    const id = generationId();
    const { signal } = a.stops.register(id);
    const stopping = a.stops.stop(id);
    expect(signal.aborted).toBe(true);
    await stopping;
  });

  it('a stop sent before register aborts at register', async () => {
    // Polling as good as off: only the check at register can see this stop.
    const [a, b] = await Promise.all([
      startProcess(redis.url, 60_000),
      startProcess(redis.url, 60_000),
    ]);
    const id = generationId();
    await a.stops.stop(id);

    const since = Date.now();
    const { signal } = b.stops.register(id);
    expect(await abortedWithin(signal, since, 100)).toBeLessThan(100);
  });

  it("lands within 500 ms when B's subscriber was killed right before the stop", async () => {
    const [a, b] = await Promise.all([startProcess(redis.url), startProcess(redis.url)]);
    const admin = new Redis(redis.url);
    try {
      const id = generationId();
      const { signal } = b.stops.register(id);
      await sleep(50);

      expect(await admin.client('KILL', 'TYPE', 'pubsub')).toBeGreaterThanOrEqual(2);
      // Nobody listens while the subscribers reconnect: the published stop is lost.
      expect(await admin.pubsub('NUMSUB', STOPS_CHANNEL)).toEqual([STOPS_CHANNEL, 0]);
      const since = Date.now();
      await a.stops.stop(id);
      expect(await abortedWithin(signal, since)).toBeLessThan(STOP_BAR_MS);

      // The subscriber comes back on its own and pub/sub serves again.
      await expect
        .poll(() => admin.pubsub('NUMSUB', STOPS_CHANNEL), { timeout: 5_000 })
        .toEqual([STOPS_CHANNEL, 2]);
      expect(b.errors).toEqual([]);
    } finally {
      admin.disconnect();
    }
  });

  it('release() stops the polling of that id; nothing is polled once none is registered', async () => {
    const b = await startProcess(redis.url);
    const released = generationId();
    const kept = generationId();
    const first = b.stops.register(released);
    const second = b.stops.register(kept);
    first.release();

    const monitor = await new Redis(redis.url).monitor();
    const polled: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === 'exists') polled.push(args[1] ?? '');
    });
    try {
      await sleep(700);
      expect(polled.filter((key) => key === stopKey(kept)).length).toBeGreaterThanOrEqual(2);
      expect(polled).not.toContain(stopKey(released));

      second.release();
      await sleep(100); // a poll already sent may still show
      polled.length = 0;
      await sleep(600);
      expect(polled).toEqual([]);
    } finally {
      monitor.disconnect();
    }
  });

  it('50 registrations, 50 concurrent stops from A: all aborted within 500 ms', async () => {
    const [a, b] = await Promise.all([startProcess(redis.url), startProcess(redis.url)]);
    const ids = Array.from({ length: 50 }, generationId);
    const signals = ids.map((id) => b.stops.register(id).signal);
    // Others keep running: a stop aborts its own generation only.
    const bystanders = Array.from({ length: 5 }, () => b.stops.register(generationId()).signal);
    await sleep(50);

    const since = Date.now();
    await Promise.all(ids.map((id) => a.stops.stop(id)));
    const took = await Promise.all(signals.map((signal) => abortedWithin(signal, since)));
    expect(Math.max(...took)).toBeLessThan(STOP_BAR_MS);
    await sleep(300);
    expect(bystanders.map((signal) => signal.aborted)).toEqual([false, false, false, false, false]);
  });

  it('reports Redis failures while polling once, never throws, and works again after', async () => {
    const own = await startTestRedis();
    try {
      const [a, b] = await Promise.all([startProcess(own.url), startProcess(own.url)]);
      const id = generationId();
      const { signal } = b.stops.register(id);
      await own.stop();

      await sleep(700); // register's check was fine; several polls fail now
      expect(b.errors).toHaveLength(1);
      expect(signal.aborted).toBe(false);
      // A stop that Redis cannot take rejects, after aborting what runs here.
      const localId = generationId();
      const local = a.stops.register(localId);
      const stopping = a.stops.stop(localId);
      expect(local.signal.aborted).toBe(true);
      await expect(stopping).rejects.toThrow();

      await own.start();
      await expect.poll(() => a.clients.command.status, { timeout: 5_000 }).toBe('ready');
      await expect.poll(() => b.clients.command.status, { timeout: 5_000 }).toBe('ready');
      const since = Date.now();
      await a.stops.stop(id);
      expect(await abortedWithin(signal, since)).toBeLessThan(STOP_BAR_MS);
    } finally {
      await Promise.all(open.map(({ stops }) => stops.close()));
      await Promise.all(open.map(({ clients }) => clients.close()));
      open = [];
      await own.dispose();
    }
  });

  it('close() returns at once while Redis is away (a shutdown never hangs on it)', async () => {
    const own = await startTestRedis();
    try {
      const b = await startProcess(own.url);
      b.stops.register(generationId());
      await own.stop();
      await expect.poll(() => b.clients.subscriber.status, { timeout: 5_000 }).not.toBe('ready');

      const since = Date.now();
      await b.stops.close();
      await b.clients.close();
      expect(Date.now() - since).toBeLessThan(500);
    } finally {
      await own.dispose();
    }
  });
});
