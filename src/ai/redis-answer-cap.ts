// The per-user cap of AI answers running or waiting, cluster-wide (SPEC §8
// AI_MAX_PENDING_PER_USER): one sorted set of tickets per user, scored by expiry, so a process
// that dies holding tickets gives the places back when they expire instead of never.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A running answer renews its ticket with its lease; one that stops renewing frees its place. */
const DEFAULT_TTL_MS = 10 * 60_000;

/** The tickets of one user: member ticketId, score its expiry (ms, Redis's clock). */
export const answersKey = (userId: string) => `parley:answers:{${userId}}`;

// Expiries come from Redis's clock (TIME), not each process's: hosts' clocks may disagree.
const NOW = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
`;
// The key lives as long as its latest ticket, so an idle user leaves nothing behind.
const KEEP_KEY = `
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
`;

/** ARGV: ticketId, max, ttlMs. Returns the user's tickets before this one, or -1 when full. */
const RESERVE = `${NOW}
local max = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if held >= max then return -1 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
${KEEP_KEY}
return held
`;

/** ARGV: ticketId, ttlMs. A ticket already gone (released, expired) stays gone. */
const RENEW = `${NOW}
local ttl = tonumber(ARGV[2])
if redis.call('ZADD', KEYS[1], 'XX', 'CH', now + ttl, ARGV[1]) == 1 then
${KEEP_KEY}
end
return 0
`;

/** The scripts, as ioredis sends them once defined (EVALSHA, falling back to EVAL). */
interface CapScripts {
  parleyAnswerReserve(key: string, ticketId: string, max: number, ttlMs: number): Promise<number>;
  parleyAnswerRenew(key: string, ticketId: string, ttlMs: number): Promise<number>;
}

export interface RedisAnswerCapOptions {
  /** The command connection (fails fast while Redis is away). */
  redis: Redis;
  /** Answers one user may have running or waiting. */
  maxPendingPerUser: number;
  /** How long a ticket holds its place without a renew. */
  ttlMs?: number;
}

export interface AnswerReservation {
  ticketId: string;
  /** The user's answers running or waiting before this one (0 for the first): a job priority. */
  rank: number;
}

/** Redis failures reject with ioredis's own errors; the caller turns them into 503. */
export class RedisAnswerCap {
  private readonly redis: Redis & CapScripts;
  private readonly ttlMs: number;

  constructor(private readonly options: RedisAnswerCapOptions) {
    this.ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
    options.redis.defineCommand('parleyAnswerReserve', { numberOfKeys: 1, lua: RESERVE });
    options.redis.defineCommand('parleyAnswerRenew', { numberOfKeys: 1, lua: RENEW });
    this.redis = options.redis as Redis & CapScripts;
  }

  /** A place for one more answer of `userId`, or undefined when the user holds the cap. */
  /** `ticketId`: the caller's id for the place (the answer's generation id), else a new one. */
  async reserve(
    userId: string,
    ticketId: string = randomUUID(),
  ): Promise<AnswerReservation | undefined> {
    const rank = await this.redis.parleyAnswerReserve(
      answersKey(userId),
      ticketId,
      this.options.maxPendingPerUser,
      this.ttlMs,
    );
    return rank < 0 ? undefined : { ticketId, rank };
  }

  /** Gives the place back (done, stopped or failed). Idempotent. */
  async release(userId: string, ticketId: string): Promise<void> {
    await this.redis.zrem(answersKey(userId), ticketId);
  }

  /** Keeps a running answer's place for another ttl (with its lease heartbeat). */
  async renew(userId: string, ticketId: string): Promise<void> {
    await this.redis.parleyAnswerRenew(answersKey(userId), ticketId, this.ttlMs);
  }
}
