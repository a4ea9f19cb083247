// What changes when REDIS_URL is set (SPEC §2 scale-out): the parts of the container that every
// instance and worker must share live in Redis. Without Redis the in-process parts are used and
// nothing here is loaded into play. One place for the choice, so the container reads the same in
// both modes.
import { randomBytes } from 'node:crypto';
import { Gauge } from 'prom-client';
import { hostname } from 'node:os';
import { MemoryGenerationLog, type GenerationLog } from './ai/generation-log.js';
import { RedisAnswerCap } from './ai/redis-answer-cap.js';
import { RedisGenerationLog } from './ai/redis-generation-log.js';
import { RedisStopSignals } from './ai/redis-stop-signals.js';
import { MemoryStopSignals, type StopSignals } from './ai/stop-signals.js';
import type { Config } from './config/env.js';
import { createInProcessEventBus, type EventBus } from './events/event-bus.js';
import { createRedisEventBus, type RedisEventBus } from './events/redis-event-bus.js';
import { MemoryCache, type Cache } from './infra/cache.js';
import type { Metrics } from './infra/metrics.js';
import { MemoryPresenceStore, type PresenceStore } from './infra/presence-store.js';
import {
  memoryRateLimiterStore,
  redisRateLimiterStore,
  type RateLimiterStore,
} from './infra/rate-limiter.js';
import { connectRedis, redisCall, type RedisClients } from './infra/redis.js';
import { RedisCache } from './infra/redis-cache.js';
import { RedisPresenceStore } from './infra/redis-presence-store.js';
import { createGenerationQueue, type GenerationQueue } from './queue/generation-queue.js';
import { scheduleInProcess, scheduleOnQueue, type StopMaintenance } from './queue/maintenance.js';
import type { AnswerCap } from './services/answer-cap.js';
import { describeError, type Logger } from './utils/logger.js';

/** An answer no worker took within this long is failed (the queue's lease). */
const QUEUE_LEASE_MS = 10 * 60_000;
/** How long a start waits for Redis before serving without it (until it comes). */
const START_WAIT_MS = 5_000;
/** Redis connection errors are logged at most this often (a Redis that is down errors per retry). */
const REDIS_ERROR_LOG_EVERY_MS = 10_000;

export interface SharedParts {
  /** This process, unique in the cluster (lease owner, event origin). */
  instanceId: string;
  redis: RedisClients | undefined;
  events: EventBus;
  cache: Cache;
  rateLimiterStore: RateLimiterStore;
  generationLog: GenerationLog;
  stops: StopSignals;
  presenceStore: PresenceStore;
  /** With Redis: the generation queue and the cluster-wide cap of answers. */
  queue: { jobs: GenerationQueue; cap: AnswerCap; queueLeaseMs: number } | undefined;
  /** Runs a housekeeping task every `everyMs`: here (in-process), or once in the cluster (Redis). */
  scheduleCleanup(task: () => Promise<unknown>, everyMs: number): StopMaintenance;
  /** Connects what needs connecting (Redis subscriptions); resolves when ready to serve. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export function createSharedParts(config: Config, metrics: Metrics, logger: Logger): SharedParts {
  const instanceId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const onEventError = (error: unknown, event: string) =>
    logger.error(`Event handler for ${event} failed`, describeError(error));
  const onCleanupError = (error: unknown) =>
    logger.warn(
      'Attachment cleanup failed; it runs again at the next interval',
      describeError(error),
    );
  if (!config.REDIS_URL) {
    return {
      instanceId,
      redis: undefined,
      events: createInProcessEventBus(onEventError),
      cache: new MemoryCache(),
      rateLimiterStore: memoryRateLimiterStore,
      generationLog: new MemoryGenerationLog(),
      stops: new MemoryStopSignals(),
      presenceStore: new MemoryPresenceStore(),
      queue: undefined,
      scheduleCleanup: (task, everyMs) => scheduleInProcess(task, everyMs, onCleanupError),
      start: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
  }

  const url = config.REDIS_URL;
  let lastLogged = 0;
  const redis = connectRedis(url, metrics, (connection, error) => {
    if (Date.now() - lastLogged < REDIS_ERROR_LOG_EVERY_MS) return;
    lastLogged = Date.now();
    logger.warn(`Redis (${connection} connection): ${error.message}`);
  });
  const reportRedis = (error: unknown) => {
    metrics.redisErrors.inc({ connection: 'command' });
    if (Date.now() - lastLogged < REDIS_ERROR_LOG_EVERY_MS) return;
    lastLogged = Date.now();
    logger.warn('Redis command failed', describeError(error));
  };
  const events: RedisEventBus = createRedisEventBus({
    command: redis.command,
    subscriber: redis.subscriber,
    origin: instanceId,
    onError: onEventError,
  });
  const generationLog = new RedisGenerationLog({
    command: redis.command,
    subscriber: redis.subscriber,
    onError: reportRedis,
    onRelayed: (lagMs: number) => metrics.streamRelayLag.observe(lagMs / 1000),
  });
  const redisStops = new RedisStopSignals({
    command: redis.command,
    subscriber: redis.subscriber,
    onError: reportRedis,
  });
  // A stop Redis cannot take is a 503 to whoever pressed it (the local abort happened anyway).
  const stops: StopSignals = {
    register: (generationId) => redisStops.register(generationId),
    stop: (generationId) => redisCall(() => redisStops.stop(generationId)),
  };
  const cap = new RedisAnswerCap({
    redis: redis.command,
    maxPendingPerUser: config.AI_MAX_PENDING_PER_USER,
  });
  const jobs = createGenerationQueue(url, redis.queueOptions);
  // Read from Redis when /metrics is scraped; a Redis that is away leaves the last values.
  new Gauge({
    name: 'ai_queue_jobs',
    help: 'Generation jobs in the cluster-wide queue, by state (waiting, active)',
    labelNames: ['state'] as const,
    registers: [metrics.registry],
    async collect() {
      const counts = await jobs.counts().catch(() => undefined);
      if (!counts) return;
      this.set({ state: 'waiting' }, counts.waiting);
      this.set({ state: 'active' }, counts.active);
    },
  });
  return {
    instanceId,
    redis,
    events,
    cache: new RedisCache(redis.command),
    rateLimiterStore: redisRateLimiterStore(redis.command),
    generationLog,
    stops,
    // On the command connection: a heartbeat and a later remove run in the order they were sent.
    presenceStore: new RedisPresenceStore(redis.command),
    queue: {
      jobs,
      cap: {
        // A Redis that is away: 503 to the sender (nothing was stored yet).
        reserve: (userId, ticketId) => redisCall(() => cap.reserve(userId, ticketId)),
        release: (userId, ticketId) => redisCall(() => cap.release(userId, ticketId)),
        renew: (userId, ticketId) => redisCall(() => cap.renew(userId, ticketId)),
      },
      queueLeaseMs: QUEUE_LEASE_MS,
    },
    scheduleCleanup: (task, everyMs) =>
      scheduleOnQueue(url, redis.queueOptions, 'attachment-cleanup', task, everyMs, onCleanupError),
    start: async () => {
      // Subscribed before serving, so no cluster event is missed; but a Redis that is down at
      // start does not keep this process from serving (503s meanwhile): the subscriptions
      // complete by themselves once it is back.
      const subscribed = Promise.all([redis.ready(), events.start(), redisStops.start()]);
      subscribed.catch(reportRedis);
      const waited = await Promise.race([
        subscribed.then(() => true),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), START_WAIT_MS).unref()),
      ]).catch(() => false);
      if (!waited) logger.warn('Redis is not reachable yet: serving 503s until it is');
    },
    close: async () => {
      await Promise.allSettled([
        events.stop(),
        redisStops.close(),
        generationLog.close(),
        jobs.close(),
      ]);
      await redis.close();
    },
  };
}
