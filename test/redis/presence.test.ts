// Issue 9: presence across API instances, with a TTL. "Instances" are separate Redis
// connections (and, in the last test, separate Socket.IO servers joined by the Redis adapter);
// a crashed instance is one that stops refreshing its sockets.
import { randomBytes } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { createContainer } from '../../src/container.js';
import { openDatabase, type Database } from '../../src/db/client.js';
import { MemoryPresenceStore, type PresenceStore } from '../../src/infra/presence-store.js';
import { RedisPresenceStore } from '../../src/infra/redis-presence-store.js';
import { createRealtimeGateway, type RealtimeGateway } from '../../src/realtime/gateway.js';
import { startPresenceTimers } from '../../src/realtime/presence-sweep.js';
import { UserRepository } from '../../src/repositories/user.repository.js';
import { PresenceService } from '../../src/services/presence.service.js';
import { createConversation, registerUser } from '../factories.js';
import { ApiClient } from '../support/api-client.js';
import { startTestRedis, type TestRedis } from '../support/redis-server.js';
import { testConfig } from '../support/server.js';
import { connectAs, settle, type RecordingSocket } from '../support/sockets.js';

let redis: TestRedis;
let database: Database;
let users: UserRepository;
const connections: Redis[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  database = await openDatabase({ kind: 'pglite' });
  await database.migrate();
  users = new UserRepository(database.db);
});

afterAll(async () => {
  await Promise.allSettled(connections.map((connection) => connection.quit()));
  await database?.close();
  await redis?.dispose();
});

/** A connection of its own, failing at once when Redis is away (like the app's). */
async function connectRedis(): Promise<Redis> {
  const connection = new Redis(redis.url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
  connection.on('error', () => undefined);
  connections.push(connection);
  await connection.connect();
  return connection;
}

/** The adapter's pair: SUBSCRIBE waits for the connection (like the app's subscriber). */
function adapterClients(): [Redis, Redis] {
  const pub = new Redis(redis.url);
  const sub = new Redis(redis.url);
  for (const client of [pub, sub]) {
    client.on('error', () => undefined);
    connections.push(client);
  }
  return [pub, sub];
}

/** Each test its own keys: the sweeps of one must not see another's users. */
const newPrefix = () => `test:${randomBytes(4).toString('hex')}:`;

interface Instance {
  redis: Redis;
  store: RedisPresenceStore;
  presence: PresenceService;
}

async function instance(
  prefix: string,
  options: { ttlMs?: number; sweepBatch?: number } = {},
): Promise<Instance> {
  const connection = await connectRedis();
  const store = new RedisPresenceStore(connection, { prefix, ...options });
  return { redis: connection, store, presence: new PresenceService(store, users) };
}

async function createUser(): Promise<string> {
  const tag = randomBytes(5).toString('hex');
  const created = await users.create({
    email: `presence_${tag}@example.test`,
    username: `presence_${tag}`,
    passwordHash: 'not-used',
  });
  if (!created.ok) throw new Error('user not created');
  return created.user.id;
}

const lastActiveAt = async (userId: string) => (await users.getById(userId))!.lastActiveAt;
const liveSockets = (instance: Instance, prefix: string, userId: string) =>
  instance.redis.zcard(`${prefix}{${userId}}`);
const indexed = (instance: Instance, prefix: string, userId: string) =>
  instance.redis.zscore(`${prefix}users`, userId);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('PresenceStore semantics (both stores, one instance)', () => {
  const stores: Array<[string, () => Promise<PresenceStore>]> = [
    ['memory', () => Promise.resolve(new MemoryPresenceStore())],
    ['redis', async () => (await instance(newPrefix())).store],
  ];
  it.each(stores)(
    '%s: counts sockets, refresh re-adds a lost one, nothing to sweep',
    async (_, make) => {
      const store = await make();
      expect(await store.add('u1', 's1')).toBe(1);
      expect(await store.add('u1', 's2')).toBe(2);
      expect(await store.add('u1', 's2')).toBe(2); // the same socket twice is one
      expect(await store.remove('u1', 's1')).toBe(1);
      expect(await store.remove('u1', 'unknown')).toBe(1);
      expect(await store.remove('u1', 's2')).toBe(0);
      expect(await store.remove('u1', 's2')).toBe(0);

      await store.add('u2', 'a');
      // u2 still has a socket (not news); u3's socket was lost (it is back).
      expect(
        await store.refresh(
          new Map([
            ['u2', ['a']],
            ['u3', ['b']],
            ['u4', []],
          ]),
        ),
      ).toEqual(['u3']);
      expect(await store.remove('u3', 'b')).toBe(0);
      expect(await store.sweepExpired()).toEqual([]);

      // Who is online: u2 (a socket), not u1 or u3 (none left), nor someone never seen.
      expect(await store.online(['u1', 'u2', 'u3', 'nobody'])).toEqual(new Set(['u2']));
      expect(await store.online([])).toEqual(new Set());
    },
  );
});

describe('two instances counting one user together', () => {
  it('online once; offline once, when the last socket closes on either instance', async () => {
    const prefix = newPrefix();
    const [a, b] = await Promise.all([instance(prefix), instance(prefix)]);
    const [lastOnA, lastOnB] = await Promise.all([createUser(), createUser()]);

    for (const [userId, last, other] of [
      [lastOnA, a, b],
      [lastOnB, b, a],
    ] as const) {
      expect(await a.presence.connected(userId, 'a1')).toBe(true);
      expect(await b.presence.connected(userId, 'b1')).toBe(false);
      expect(await a.presence.connected(userId, 'a2')).toBe(false);
      expect(await liveSockets(a, prefix, userId)).toBe(3);

      const lastSocket = last === a ? 'a2' : 'b1';
      const others = ['a1', 'a2', 'b1'].filter((s) => s !== lastSocket);
      for (const socketId of others) {
        const owner = socketId.startsWith('a') ? a : b;
        expect(await owner.presence.disconnected(userId, socketId)).toBe(false);
      }
      const before = new Date();
      expect(await last.presence.disconnected(userId, lastSocket)).toBe(true);
      expect((await lastActiveAt(userId)).getTime()).toBeGreaterThanOrEqual(before.getTime() - 5);
      expect(await indexed(other, prefix, userId)).toBeNull();
    }
  });

  it('30 concurrent connects, then 30 mixed, then all disconnects across two instances', async () => {
    const prefix = newPrefix();
    const [a, b] = await Promise.all([instance(prefix), instance(prefix)]);
    const userId = await createUser();
    const on = (i: number) => (i % 2 === 0 ? a : b);

    // Each add answers with a distinct count: no two saw the same state.
    const counts = await Promise.all(
      Array.from({ length: 30 }, (_, i) => on(i).store.add('counted', `s${i}`)),
    );
    expect([...counts].sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    const removed = await Promise.all(
      Array.from({ length: 30 }, (_, i) => on(i + 1).store.remove('counted', `s${i}`)),
    );
    expect([...removed].sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i));

    const cameOnline = await Promise.all(
      Array.from({ length: 30 }, (_, i) => on(i).presence.connected(userId, `c${i}`)),
    );
    expect(cameOnline.filter(Boolean)).toHaveLength(1);

    // 15 of them close while 15 new ones open, all at once: 30 remain, nobody went offline.
    const mixed = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        i < 15
          ? on(i + 1).presence.disconnected(userId, `c${i}`)
          : on(i).presence.connected(userId, `n${i}`),
      ),
    );
    expect(mixed.filter(Boolean)).toEqual([]);
    expect(await liveSockets(a, prefix, userId)).toBe(30);

    const open = [
      ...Array.from({ length: 15 }, (_, i) => `c${i + 15}`),
      ...Array.from({ length: 15 }, (_, i) => `n${i + 15}`),
    ];
    const wentOffline = await Promise.all(
      open.map((socketId, i) => on(i).presence.disconnected(userId, socketId)),
    );
    expect(wentOffline.filter(Boolean)).toHaveLength(1);
    expect(await liveSockets(a, prefix, userId)).toBe(0);
    expect(await indexed(a, prefix, userId)).toBeNull();
  });
});

describe('expiry and sweeping', () => {
  const ttlMs = 1_000;
  const sweepEveryMs = 200;

  it('a crashed instance’s users are swept offline within ttl + sweep; a refreshing one’s are not', async () => {
    const prefix = newPrefix();
    const [crashed, alive] = await Promise.all([
      instance(prefix, { ttlMs }),
      instance(prefix, { ttlMs }),
    ]);
    const [u1, u2, u3] = await Promise.all([createUser(), createUser(), createUser()]);
    const started = Date.now();
    await Promise.all([
      crashed.presence.connected(u1, 'x1'),
      crashed.presence.connected(u1, 'x2'),
      crashed.presence.connected(u2, 'x3'),
      alive.presence.connected(u3, 'y1'),
    ]);
    // The crashed instance says nothing more; the live one beats and sweeps like the timers.
    const swept = new Map<string, number>();
    const deadline = started + ttlMs + 2_000;
    let lastBeat = 0;
    while (Date.now() < deadline && swept.size < 2) {
      if (Date.now() - lastBeat >= 250) {
        lastBeat = Date.now();
        await alive.presence.heartbeat([{ userId: u3, socketId: 'y1' }]);
      }
      for (const userId of await alive.presence.sweepOffline()) {
        expect(swept.has(userId)).toBe(false);
        swept.set(userId, Date.now() - started);
      }
      await sleep(sweepEveryMs);
    }
    expect([...swept.keys()].sort()).toEqual([u1, u2].sort());
    for (const elapsed of swept.values()) {
      expect(elapsed).toBeGreaterThanOrEqual(ttlMs - 50); // not before its time
      expect(elapsed).toBeLessThanOrEqual(ttlMs + sweepEveryMs + 400);
    }
    // Offline like a disconnect: lastActiveAt recorded at the sweep, keys gone.
    expect((await lastActiveAt(u1)).getTime()).toBeGreaterThanOrEqual(started + ttlMs - 50);
    expect(await liveSockets(alive, prefix, u1)).toBe(0);
    expect(await indexed(alive, prefix, u1)).toBeNull();
    expect(await liveSockets(alive, prefix, u3)).toBe(1);
    expect(await alive.presence.disconnected(u3, 'y1')).toBe(true);
  });

  it('a user with a live socket on another instance is not swept; their dead sockets are', async () => {
    const prefix = newPrefix();
    const [crashed, alive, sweeper] = await Promise.all([
      instance(prefix, { ttlMs }),
      instance(prefix, { ttlMs }),
      instance(prefix, { ttlMs }),
    ]);
    const userId = await createUser();
    expect(await crashed.presence.connected(userId, 'dead')).toBe(true);
    expect(await alive.presence.connected(userId, 'live')).toBe(false);

    const until = Date.now() + 2.5 * ttlMs;
    let beats = 0;
    while (Date.now() < until) {
      await alive.presence.heartbeat([{ userId, socketId: 'live' }]);
      beats++;
      expect(await sweeper.presence.sweepOffline()).toEqual([]);
      // The refresh moves both scores: the index holds the user's latest expiry.
      const [, latest] = await alive.redis.zrange(`${prefix}{${userId}}`, -1, -1, 'WITHSCORES');
      expect(await indexed(alive, prefix, userId)).toBe(latest);
      await sleep(250);
    }
    expect(beats).toBeGreaterThan(5);
    expect(await liveSockets(alive, prefix, userId)).toBe(1); // 'dead' was dropped
    expect(await alive.presence.disconnected(userId, 'live')).toBe(true);
  });

  it('three sweepers at once return each expired user exactly once', async () => {
    const prefix = newPrefix();
    const [writer, ...sweepers] = await Promise.all(
      [0, 1, 2, 3].map(() => instance(prefix, { ttlMs: 500, sweepBatch: 7 })),
    );
    const userIds = await Promise.all(Array.from({ length: 60 }, () => createUser()));
    await Promise.all(
      userIds.map((userId, i) => writer!.presence.connected(userId, `socket-${i % 7}-${i}`)),
    );
    await sleep(600);

    const results = await Promise.all(sweepers.map((s) => s.presence.sweepOffline()));
    const all = results.flat();
    expect(all).toHaveLength(userIds.length);
    expect(new Set(all)).toEqual(new Set(userIds));
    expect(await writer!.redis.zcard(`${prefix}users`)).toBe(0);
    expect(await Promise.all(sweepers.map((s) => s.presence.sweepOffline()))).toEqual([[], [], []]);
  });

  it('a heartbeat brings back what the sweep took from a stalled instance, once', async () => {
    const prefix = newPrefix();
    const [stalled, sweeper] = await Promise.all([
      instance(prefix, { ttlMs: 500 }),
      instance(prefix, { ttlMs: 500 }),
    ]);
    const userId = await createUser();
    await stalled.presence.connected(userId, 's1');
    await sleep(600);
    expect(await sweeper.presence.sweepOffline()).toEqual([userId]);

    const sockets = [{ userId, socketId: 's1' }];
    expect(await stalled.presence.heartbeat(sockets)).toEqual([userId]);
    expect(await stalled.presence.heartbeat(sockets)).toEqual([]);
    expect(await sweeper.presence.sweepOffline()).toEqual([]);
    expect(await stalled.presence.disconnected(userId, 's1')).toBe(true);
  });
  it('a lastActiveAt the sweep cannot write does not hold back the offline', async () => {
    const prefix = newPrefix();
    const closed = await openDatabase({ kind: 'pglite' });
    await closed.close(); // a database that answers nothing
    const failures: string[] = [];
    const connection = await connectRedis();
    const store = new RedisPresenceStore(connection, { prefix, ttlMs: 300 });
    const presence = new PresenceService(store, new UserRepository(closed.db), (_, userId) =>
      failures.push(userId),
    );
    await store.add('u-1', 's1');
    await sleep(400);
    expect(await presence.sweepOffline()).toEqual(['u-1']);
    expect(failures).toEqual(['u-1']);
  });
});

describe('presence timers on Socket.IO servers joined by the Redis adapter', () => {
  interface Gateway {
    url: string;
    gateway: RealtimeGateway;
    presenceRedis: Redis;
    stopTimers: () => Promise<void>;
    close(): Promise<void>;
  }

  async function startGateway(prefix: string, ttlMs: number): Promise<Gateway> {
    const container = createContainer(testConfig(), database);
    const presenceRedis = await connectRedis();
    container.presence = new PresenceService(
      new RedisPresenceStore(presenceRedis, { prefix, ttlMs }),
      new UserRepository(database.db),
    );
    const server: HttpServer = createServer(createApp(container));
    const gateway = createRealtimeGateway(server, container);
    const [pub, sub] = adapterClients();
    gateway.io.adapter(createAdapter(pub, sub));
    const stopTimers = startPresenceTimers(gateway.io, container, {
      heartbeatMs: 250,
      sweepMs: 200,
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      gateway,
      presenceRedis,
      stopTimers,
      close: async () => {
        await stopTimers();
        await gateway.close();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }

  it('a crashed instance’s user goes offline, told once to a friend on another instance', async () => {
    const prefix = newPrefix();
    const ttlMs = 1_000;
    const [doomed, b, c] = await Promise.all([
      startGateway(prefix, ttlMs),
      startGateway(prefix, ttlMs),
      startGateway(prefix, ttlMs),
    ]);
    const sockets: RecordingSocket[] = [];
    try {
      const api = new ApiClient(b.url);
      const [alice, friend] = await Promise.all([registerUser(api), registerUser(api)]);
      await createConversation(api, alice, { participantIds: [friend.user.id] });
      const friendSocket = await connectAs(c.url, friend.accessToken);
      sockets.push(friendSocket);
      await settle(100);

      sockets.push(await connectAs(doomed.url, alice.accessToken));
      expect(await friendSocket.next('user:online')).toMatchObject({ userId: alice.user.id });

      // The crash: no more heartbeats, and nothing it says reaches Redis (its disconnects are lost).
      await doomed.stopTimers();
      doomed.presenceRedis.disconnect();
      await doomed.close();
      const crashedAt = Date.now();

      expect(await friendSocket.next('user:offline', undefined, ttlMs + 2_000)).toMatchObject({
        userId: alice.user.id,
      });
      expect(Date.now() - crashedAt).toBeLessThanOrEqual(ttlMs + 200 * 1.25 + 500);
      await settle(1_000); // b and c both kept sweeping
      expect(friendSocket.of('user:offline')).toHaveLength(1);
      // The friend's own socket outlived several TTLs: c kept it alive.
      expect(await b.presenceRedis.zcard(`${prefix}{${friend.user.id}}`)).toBe(1);
    } finally {
      for (const socket of sockets) socket.close();
      await Promise.all([b.close(), c.close()]);
    }
  });
});
