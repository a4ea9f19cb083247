// The Cache on Redis (scale-out): what one instance caches or marks (a revoked session, a
// membership answer) every instance sees at once. Values are JSON.
import type { Redis } from 'ioredis';
import type { Cache } from './cache.js';
import { redisCall } from './redis.js';

export class RedisCache implements Cache {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'parley:cache:',
  ) {}

  async get<T>(key: string): Promise<T | undefined> {
    const raw = await redisCall(() => this.redis.get(this.prefix + key));
    return raw === null ? undefined : (JSON.parse(raw) as T);
  }

  async set(key: string, value: unknown, ttlMs: number): Promise<void> {
    await redisCall(() =>
      this.redis.set(this.prefix + key, JSON.stringify(value), 'PX', Math.max(1, Math.ceil(ttlMs))),
    );
  }

  async add(key: string, value: unknown, ttlMs: number): Promise<boolean> {
    const done = await redisCall(() =>
      this.redis.set(
        this.prefix + key,
        JSON.stringify(value),
        'PX',
        Math.max(1, Math.ceil(ttlMs)),
        'NX',
      ),
    );
    return done === 'OK';
  }

  async delete(key: string): Promise<void> {
    await redisCall(() => this.redis.del(this.prefix + key));
  }
}
