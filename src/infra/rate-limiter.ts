// Fixed-window limits over rate-limiter-flexible. The store is pluggable: memory now, Redis
// when REDIS_URL is configured, with the same Limiter API for every caller.
import type { Redis } from 'ioredis';
import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import { unavailable } from '../errors.js';

export interface LimitRule {
  /** Namespaces the keys of one rule, e.g. "login:email-ip". */
  name: string;
  points: number;
  windowMs: number;
}

export type LimitVerdict = { allowed: true } | { allowed: false; retryAfterMs: number };

export interface Limiter {
  readonly rule: LimitRule;
  /** Counts one hit against `key`; refused once the window's points are used up. */
  hit(key: string): Promise<LimitVerdict>;
  /**
   * Gives back one point an allowed `hit` took, for work that turned out not to count (a
   * login reserved before the password check, then right). Never leaves the key in credit.
   */
  refund(key: string): Promise<void>;
  reset(key: string): Promise<void>;
}

/** Builds the backing limiter for a rule: the one seam between memory and Redis. */
export type RateLimiterStore = (rule: LimitRule) => RateLimiterAbstract;

export const memoryRateLimiterStore: RateLimiterStore = (rule) =>
  new RateLimiterMemory({
    keyPrefix: rule.name,
    points: rule.points,
    duration: Math.max(1, Math.ceil(rule.windowMs / 1000)),
  });

/** Limits every instance shares (scale-out): one counter per key in Redis, updated atomically. */
export const redisRateLimiterStore =
  (redis: Redis): RateLimiterStore =>
  (rule) =>
    new RateLimiterRedis({
      storeClient: redis,
      keyPrefix: `parley:limit:${rule.name}`,
      points: rule.points,
      duration: Math.max(1, Math.ceil(rule.windowMs / 1000)),
      // Refused at once while Redis is away (503), never counted as allowed.
      rejectIfRedisNotReady: true,
    });

/** A store that failed (Redis away): the caller gets 503, never an unchecked pass. */
const storeFailed = () => unavailable('A shared service (Redis) is unavailable; try again shortly');

export function createLimiter(store: RateLimiterStore, rule: LimitRule): Limiter {
  const backend = store(rule);
  return {
    rule,
    hit: async (key) => {
      try {
        await backend.consume(key);
        return { allowed: true };
      } catch (rejection) {
        // rate-limiter-flexible rejects with a RateLimiterRes when over the limit and with an
        // Error when the store fails; a store failure must surface, not pass as "allowed".
        if (rejection instanceof RateLimiterRes) {
          return { allowed: false, retryAfterMs: rejection.msBeforeNext };
        }
        throw backend instanceof RateLimiterMemory ? rejection : storeFailed();
      }
    },
    refund: async (key) => {
      // The store's reward is an atomic decrement, but if the window ended (or a reset deleted
      // the key) since the hit, it starts a new window below zero: credit for a free guess.
      // Each refund that lands below zero takes back only its own point, so concurrent
      // refunds and hits still add up, on any store.
      const after = await backend.reward(key, 1).catch(() => Promise.reject(storeFailed()));
      if (after.consumedPoints < 0)
        await backend.penalty(key, 1).catch(() => Promise.reject(storeFailed()));
    },
    reset: async (key) => {
      await backend.delete(key).catch(() => Promise.reject(storeFailed()));
    },
  };
}
