// Presence on Redis (scale-out): every instance counts a user's sockets in one place, so a user
// with a phone on one instance and a laptop on another goes offline once, when the last closes.
// Each socket expires unless its instance refreshes it, so the users of a crashed instance go
// offline within the TTL (and a sweep) instead of staying online forever.
//
//   <prefix>{<userId>}  ZSET socket id → the time it expires (ms)
//   <prefix>users       ZSET user id → the latest expiry of their sockets (what the sweep scans)
//
// Times come from the Redis server's clock (TIME inside each script), not the instances':
// instances whose clocks disagree cannot expire each other's live sockets early.
//
// Not for Redis Cluster: a script touches the user's key and the index (and the sweep keys it
// builds from user ids), which live in different slots.
import type { ChainableCommander, Redis } from 'ioredis';
import type { PresenceStore, SocketIdsByUser } from './presence-store.js';
import { redisCall } from './redis.js';

/** A socket not refreshed in this long is gone (a crashed instance's users go offline). */
export const PRESENCE_TTL_MS = 60_000;

export interface RedisPresenceOptions {
  /** How long a socket lives without a refresh. */
  ttlMs?: number;
  /** Key prefix (tests isolate themselves with their own). */
  prefix?: string;
  /** Users examined per sweep script: bounds how long one script holds Redis. */
  sweepBatch?: number;
}

// Scores are written with %.0f: Lua's own number-to-string keeps only 14 digits.
const CLOCK = `
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function latest(key)
  return redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]
end
`;

/**
 * KEYS: user, index. ARGV: socketId, ttlMs, userId, max (0: none). Returns the user's live
 * sockets, or -1 when a new socket would pass `max` (then nothing is written).
 */
const ADD = `${CLOCK}
local t = now()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
local max = tonumber(ARGV[4])
if max > 0 and not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= max then
  return -1
end
redis.call('ZADD', KEYS[1], string.format('%.0f', t + tonumber(ARGV[2])), ARGV[1])
redis.call('ZADD', KEYS[2], latest(KEYS[1]), ARGV[3])
return redis.call('ZCARD', KEYS[1])
`;

/** KEYS: user, index. ARGV: socketId, userId. Returns the user's live sockets left. */
const REMOVE = `${CLOCK}
local t = now()
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
local top = latest(KEYS[1])
if top then
  redis.call('ZADD', KEYS[2], top, ARGV[2])
  return redis.call('ZCARD', KEYS[1])
end
redis.call('ZREM', KEYS[2], ARGV[2])
return 0
`;

/**
 * KEYS: user, index. ARGV: ttlMs, userId, socketIds…. Returns how many live sockets the user had
 * before (0: the store had lost them, they are back).
 */
const REFRESH = `${CLOCK}
local t = now()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
local before = redis.call('ZCARD', KEYS[1])
local expiry = string.format('%.0f', t + tonumber(ARGV[1]))
for i = 3, #ARGV do
  redis.call('ZADD', KEYS[1], expiry, ARGV[i])
end
redis.call('ZADD', KEYS[2], latest(KEYS[1]), ARGV[2])
return before
`;

/**
 * KEYS: index. ARGV: key prefix, batch size. Users whose latest expiry has passed: their expired
 * sockets are dropped, and those left with none leave the index and are returned. Returns
 * {users examined, users gone}; one script, so concurrent sweepers never return a user twice.
 */
const SWEEP = `${CLOCK}
local t = now()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', t, 'LIMIT', 0, tonumber(ARGV[2]))
local gone = {}
for _, userId in ipairs(due) do
  local key = ARGV[1] .. '{' .. userId .. '}'
  redis.call('ZREMRANGEBYSCORE', key, '-inf', t)
  local top = latest(key)
  if top then
    redis.call('ZADD', KEYS[1], top, userId)
  else
    redis.call('ZREM', KEYS[1], userId)
    gone[#gone + 1] = userId
  end
end
return {#due, gone}
`;

/** The scripts, as ioredis defines them on the connection (EVALSHA, EVAL when not loaded). */
interface PresenceCommands {
  parleyPresenceAdd(
    user: string,
    index: string,
    socketId: string,
    ttlMs: number,
    userId: string,
    max: number,
  ): Promise<number>;
  parleyPresenceRemove(
    user: string,
    index: string,
    socketId: string,
    userId: string,
  ): Promise<number>;
  parleyPresenceSweep(index: string, prefix: string, batch: number): Promise<[number, string[]]>;
}

interface PresencePipeline extends ChainableCommander {
  parleyPresenceRefresh(
    user: string,
    index: string,
    ttlMs: number,
    userId: string,
    ...socketIds: string[]
  ): PresencePipeline;
}

export class RedisPresenceStore implements PresenceStore {
  private readonly redis: Redis & PresenceCommands;
  private readonly ttlMs: number;
  private readonly prefix: string;
  private readonly index: string;
  private readonly sweepBatch: number;

  constructor(redis: Redis, options: RedisPresenceOptions = {}) {
    this.ttlMs = options.ttlMs ?? PRESENCE_TTL_MS;
    this.prefix = options.prefix ?? 'parley:presence:';
    this.index = `${this.prefix}users`;
    this.sweepBatch = options.sweepBatch ?? 500;
    // Defining them again (another store on the same connection) replaces them with the same.
    redis.defineCommand('parleyPresenceAdd', { numberOfKeys: 2, lua: ADD });
    redis.defineCommand('parleyPresenceRemove', { numberOfKeys: 2, lua: REMOVE });
    redis.defineCommand('parleyPresenceRefresh', { numberOfKeys: 2, lua: REFRESH });
    redis.defineCommand('parleyPresenceSweep', { numberOfKeys: 1, lua: SWEEP });
    this.redis = redis as Redis & PresenceCommands;
  }

  async add(userId: string, socketId: string, max = 0): Promise<number> {
    return redisCall(() =>
      this.redis.parleyPresenceAdd(
        this.userKey(userId),
        this.index,
        socketId,
        this.ttlMs,
        userId,
        max,
      ),
    );
  }

  async remove(userId: string, socketId: string): Promise<number> {
    return redisCall(() =>
      this.redis.parleyPresenceRemove(this.userKey(userId), this.index, socketId, userId),
    );
  }

  /**
   * One round trip for all of this instance's sockets: a script per user (atomic for that
   * user), pipelined. A socket that disconnected meanwhile is not brought back: its removal is
   * sent on this same connection after the caller listed it, so Redis runs it after the refresh.
   */
  async refresh(socketIdsByUser: SocketIdsByUser): Promise<string[]> {
    const users = [...socketIdsByUser].filter(([, socketIds]) => socketIds.length > 0);
    if (users.length === 0) return [];
    const pipeline = this.redis.pipeline() as PresencePipeline;
    for (const [userId, socketIds] of users) {
      pipeline.parleyPresenceRefresh(
        this.userKey(userId),
        this.index,
        this.ttlMs,
        userId,
        ...socketIds,
      );
    }
    const results = (await redisCall(() => pipeline.exec())) ?? [];
    const back: string[] = [];
    for (const [i, [error, before]] of results.entries()) {
      if (error) throw error;
      if (before === 0) back.push(users[i]![0]);
    }
    return back;
  }

  /** A user stays in the index until the sweep (or their last disconnect) takes them out. */
  async online(userIds: readonly string[]): Promise<Set<string>> {
    if (userIds.length === 0) return new Set();
    const scores = await redisCall(() => this.redis.zmscore(this.index, ...userIds));
    return new Set(userIds.filter((_, i) => scores[i] !== null));
  }

  async sweepExpired(): Promise<string[]> {
    const gone: string[] = [];
    for (;;) {
      let examined: number;
      try {
        let users: string[];
        [examined, users] = await redisCall(() =>
          this.redis.parleyPresenceSweep(this.index, this.prefix, this.sweepBatch),
        );
        gone.push(...users);
      } catch (error) {
        // Users of earlier batches are out of the index already: nobody else would report them.
        if (gone.length > 0) return gone;
        throw error;
      }
      // Each examined user left the due range (gone, or rescored to a later expiry): the next
      // batch is new users, and the loop ends.
      if (examined < this.sweepBatch) return gone;
    }
  }

  private userKey(userId: string): string {
    return `${this.prefix}{${userId}}`;
  }
}
