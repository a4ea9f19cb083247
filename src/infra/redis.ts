// The Redis connections of one process (scale-out, SPEC §2): one for commands, one for
// subscriptions, and BullMQ's. They reconnect by themselves forever; while Redis is away a
// command fails at once (no offline queue) or after COMMAND_TIMEOUT_MS, so a request gets 503
// within seconds instead of hanging.
import { Redis, type RedisOptions } from 'ioredis';
import { unavailable, AppError } from '../errors.js';
import type { Metrics } from './metrics.js';
import { isOutage } from '../utils/outage.js';

/** A command that gets no answer in this long fails (a half-open connection). */
const COMMAND_TIMEOUT_MS = 2_000;

export interface RedisClients {
  /** Commands: cache, limits, presence, generation logs, stop keys. Fails fast while Redis is down. */
  command: Redis;
  /** SUBSCRIBE only (cluster events, generation relay, stop signals); resubscribes after a reconnect. */
  subscriber: Redis;
  /** Options for BullMQ's own connections (its blocking commands must wait, not fail). */
  queueOptions: RedisOptions;
  /** A publisher and a subscriber of their own, for the Socket.IO Redis adapter. */
  adapterClients(): { pub: Redis; sub: Redis };
  /** Waits until the command connection is ready (the first connect). */
  ready(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type RedisErrorReporter = (connection: string, error: Error) => void;

/** Reconnects every 100 ms, backing off to every second, forever. */
const retryStrategy = (attempt: number) => Math.min(100 * attempt, 1_000);

export function connectRedis(
  url: string,
  metrics: Metrics,
  report: RedisErrorReporter,
): RedisClients {
  const base: RedisOptions = {
    retryStrategy,
    connectTimeout: 2_000,
    // Long-lived connections through proxies and NATs.
    keepAlive: 10_000,
    lazyConnect: true,
  };
  const watch = (name: string, client: Redis) => {
    client.on('error', (error: Error) => {
      metrics.redisErrors.inc({ connection: name });
      report(name, error);
    });
    return client;
  };
  const command = watch(
    'command',
    new Redis(url, {
      ...base,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectionName: 'parley:command',
    }),
  );
  const subscriber = watch(
    'subscriber',
    new Redis(url, {
      ...base,
      // SUBSCRIBE waits for the connection, and is sent again after every reconnect.
      enableOfflineQueue: true,
      autoResubscribe: true,
      maxRetriesPerRequest: null,
      connectionName: 'parley:subscriber',
    }),
  );
  // Connecting starts now; a Redis that is down at start is waited for (with the rest refused).
  const firstConnect = Promise.allSettled([command.connect(), subscriber.connect()]);
  const extra: Redis[] = [];
  const own = (name: string, client: Redis) => {
    extra.push(client);
    return watch(name, client);
  };
  return {
    command,
    subscriber,
    queueOptions: { ...base, lazyConnect: false, maxRetriesPerRequest: null },
    adapterClients: () => {
      // An emit while Redis is away fails at once rather than arriving late after a reconnect;
      // the adapter does not catch its publishes, so the failure is counted here instead of
      // surfacing as an unhandled rejection.
      const pub = own(
        'adapter-pub',
        command.duplicate({ lazyConnect: false, connectionName: 'parley:adapter-pub' }),
      );
      type Publish = (channel: string, message: string | Buffer) => Promise<number>;
      // Bound before it is replaced below (the replacement calls this one).
      const publish: Publish = pub.publish.bind(pub);
      (pub as unknown as { publish: typeof publish }).publish = (channel, message) =>
        publish(channel, message).catch((error: unknown) => {
          metrics.redisErrors.inc({ connection: 'adapter-pub' });
          report('adapter-pub', error instanceof Error ? error : new Error(String(error)));
          return 0;
        });
      const sub = own(
        'adapter-sub',
        subscriber.duplicate({ lazyConnect: false, connectionName: 'parley:adapter-sub' }),
      );
      return { pub, sub };
    },
    ready: async () => {
      await firstConnect;
      if (command.status === 'ready') return;
      await new Promise<void>((resolve) => command.once('ready', () => resolve()));
    },
    ping: async () => {
      await redisCall(() => command.ping());
    },
    close: async () => {
      const all = [command, subscriber, ...extra];
      await Promise.allSettled(all.map((client) => client.quit()));
      for (const client of all) client.disconnect();
    },
  };
}

/**
 * Runs a Redis command; a Redis that is down or does not answer becomes 503 UNAVAILABLE
 * (SPEC §2: requests during an outage get 503 promptly). Other errors pass unchanged.
 */
export async function redisCall<T>(command: () => Promise<T>): Promise<T> {
  try {
    return await command();
  } catch (error) {
    if (error instanceof AppError || !isOutage(error)) throw error;
    throw unavailable('A shared service (Redis) is unavailable; try again shortly');
  }
}
