// RedisAnswerCap (issue 9, SPEC §8 AI_MAX_PENDING_PER_USER): the per-user cap of answers running
// or waiting holds across processes (two connections racing), places come back on release or when
// a ticket expires unrenewed, and the rank a reservation gets is the user's own queue position.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { answersKey, RedisAnswerCap } from '../../src/ai/redis-answer-cap.js';
import { AppError } from '../../src/errors.js';
import { createMetrics } from '../../src/infra/metrics.js';
import { connectRedis, redisCall, type RedisClients } from '../../src/infra/redis.js';
import { startTestRedis, type TestRedis } from '../support/redis-server.js';

const metrics = createMetrics({ collectDefault: false });
let redis: TestRedis;
let open: RedisClients[] = [];

async function connect(url = redis.url): Promise<RedisClients> {
  const clients = connectRedis(url, metrics, () => undefined);
  await clients.ready();
  open.push(clients);
  return clients;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let nextUser = 0;
const userId = () => `user-${process.pid}-${++nextUser}`;

beforeAll(async () => {
  redis = await startTestRedis();
});

afterEach(async () => {
  await Promise.all(open.map((clients) => clients.close()));
  open = [];
});

afterAll(async () => {
  await redis.dispose();
});

describe('RedisAnswerCap', () => {
  it('3 of 10 concurrent reserves for one user succeed (cap 3), across two connections', async () => {
    const [one, two] = await Promise.all([connect(), connect()]);
    const caps = [one, two].map(
      (clients) => new RedisAnswerCap({ redis: clients.command, maxPendingPerUser: 3 }),
    );
    const user = userId();

    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => caps[i % 2]!.reserve(user)),
    );
    const granted = results.filter((result) => result !== undefined);
    expect(granted).toHaveLength(3);
    expect(granted.map((r) => r.rank).sort()).toEqual([0, 1, 2]);
    expect(new Set(granted.map((r) => r.ticketId)).size).toBe(3);
    expect(await one.command.zcard(answersKey(user))).toBe(3);
  });

  it('release frees a place, once', async () => {
    const clients = await connect();
    const cap = new RedisAnswerCap({ redis: clients.command, maxPendingPerUser: 2 });
    const user = userId();
    const first = await cap.reserve(user);
    expect(await cap.reserve(user)).toBeDefined();
    expect(await cap.reserve(user)).toBeUndefined();

    await cap.release(user, first!.ticketId);
    await cap.release(user, first!.ticketId); // idempotent: frees no second place
    expect(await cap.reserve(user)).toEqual({ ticketId: expect.any(String), rank: 1 });
    expect(await cap.reserve(user)).toBeUndefined();
  });

  it('expired tickets free their places (and the key goes with the last)', async () => {
    const clients = await connect();
    const cap = new RedisAnswerCap({ redis: clients.command, maxPendingPerUser: 2, ttlMs: 300 });
    const user = userId();
    expect(await cap.reserve(user)).toBeDefined();
    expect(await cap.reserve(user)).toBeDefined();
    expect(await cap.reserve(user)).toBeUndefined();
    const ttl = await clients.command.pttl(answersKey(user));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(300);

    await sleep(400);
    expect((await cap.reserve(user))?.rank).toBe(0);
    expect((await cap.reserve(user))?.rank).toBe(1);
    await sleep(400);
    expect(await clients.command.exists(answersKey(user))).toBe(0);
  });

  it("ranks count the user's own answers: 0, 1, 2 for one user, 0 for another", async () => {
    const clients = await connect();
    const cap = new RedisAnswerCap({ redis: clients.command, maxPendingPerUser: 3 });
    const [heavy, light] = [userId(), userId()];
    const first = await cap.reserve(heavy);
    const second = await cap.reserve(heavy);
    const third = await cap.reserve(heavy);
    expect([first?.rank, second?.rank, third?.rank]).toEqual([0, 1, 2]);
    expect((await cap.reserve(light))?.rank).toBe(0);

    await cap.release(heavy, first!.ticketId);
    expect((await cap.reserve(heavy))?.rank).toBe(2);
  });

  it('renew keeps a ticket alive past its first ttl; one not renewed expires', async () => {
    const clients = await connect();
    const cap = new RedisAnswerCap({ redis: clients.command, maxPendingPerUser: 1, ttlMs: 600 });
    const [renewed, forgotten] = [userId(), userId()];
    const ticket = await cap.reserve(renewed);
    expect(await cap.reserve(forgotten)).toBeDefined();

    await sleep(350);
    await cap.renew(renewed, ticket!.ticketId);
    await sleep(400); // 750 ms in: past the first expiry (600), before the renewed one (950)
    expect(await cap.reserve(renewed)).toBeUndefined();
    expect(await cap.reserve(forgotten)).toBeDefined();
    // The key lives as long as its renewed ticket.
    expect(await clients.command.pttl(answersKey(renewed))).toBeGreaterThan(100);
  });

  it('renew does not bring back a released ticket', async () => {
    const clients = await connect();
    const cap = new RedisAnswerCap({ redis: clients.command, maxPendingPerUser: 1 });
    const user = userId();
    const ticket = await cap.reserve(user);
    await cap.release(user, ticket!.ticketId);
    await cap.renew(user, ticket!.ticketId);
    expect(await clients.command.zcard(answersKey(user))).toBe(0);
    expect(await cap.reserve(user)).toBeDefined();
  });

  it('rejects at once while Redis is away; redisCall makes that a 503', async () => {
    const own = await startTestRedis();
    try {
      const clients = await connect(own.url);
      const cap = new RedisAnswerCap({ redis: clients.command, maxPendingPerUser: 3 });
      const user = userId();
      const ticket = await cap.reserve(user);
      await own.stop();

      const since = Date.now();
      const failure = await redisCall(() => cap.reserve(user)).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(AppError);
      expect((failure as AppError).code).toBe('UNAVAILABLE');
      await expect(cap.release(user, ticket!.ticketId)).rejects.toThrow();
      await expect(cap.renew(user, ticket!.ticketId)).rejects.toThrow();
      expect(Date.now() - since).toBeLessThan(500);
    } finally {
      await own.dispose();
    }
  });
});
