// The Limiter over rate-limiter-flexible's memory store: atomic hits, refunds that never leave
// a key in credit.
import { describe, expect, it } from 'vitest';
import { createLimiter, memoryRateLimiterStore } from '../../src/infra/rate-limiter.js';

const limiter = (points: number) =>
  createLimiter(memoryRateLimiterStore, {
    name: `test:${Math.random()}`,
    points,
    windowMs: 60_000,
  });

describe('Limiter', () => {
  it('allows exactly `points` of many simultaneous hits', async () => {
    const shared = limiter(5);
    const verdicts = await Promise.all(Array.from({ length: 50 }, () => shared.hit('k')));
    expect(verdicts.filter((v) => v.allowed)).toHaveLength(5);
    for (const verdict of verdicts) {
      if (!verdict.allowed) expect(verdict.retryAfterMs).toBeGreaterThan(0);
    }
  });

  it('gives a refunded point back to the next hit', async () => {
    const shared = limiter(2);
    expect((await shared.hit('k')).allowed).toBe(true);
    expect((await shared.hit('k')).allowed).toBe(true);
    await shared.refund('k');
    expect((await shared.hit('k')).allowed).toBe(true);
    expect((await shared.hit('k')).allowed).toBe(false);
  });

  it('never leaves a key in credit: a refund after a reset gives nothing extra', async () => {
    const shared = limiter(2);
    await shared.hit('k');
    await shared.reset('k');
    await Promise.all([shared.refund('k'), shared.refund('k')]);
    const after = await Promise.all(Array.from({ length: 4 }, () => shared.hit('k')));
    expect(after.map((v) => v.allowed)).toEqual([true, true, false, false]);
  });
});
