// Fixed-window limits over rate-limiter-flexible. The store is pluggable: memory now, Redis
// when REDIS_URL is configured, with the same Limiter API for every caller.
import { RateLimiterMemory, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

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
  /** Whether `key` has used up its points, without counting anything. */
  check(key: string): Promise<LimitVerdict>;
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
        throw rejection;
      }
    },
    check: async (key) => {
      const state = await backend.get(key);
      if (state && state.consumedPoints >= rule.points) {
        return { allowed: false, retryAfterMs: state.msBeforeNext };
      }
      return { allowed: true };
    },
    reset: async (key) => {
      await backend.delete(key);
    },
  };
}
