import { isCuid } from '@paralleldrive/cuid2';
import { describe, expect, it } from 'vitest';
import { createId } from '../../src/utils/ids.js';

describe('createId', () => {
  it('makes cuid2 ids: 24 characters, a letter then base 36, valid to the cuid2 library', () => {
    for (let i = 0; i < 1000; i++) {
      const id = createId();
      expect(id).toMatch(/^[a-z][a-z0-9]{23}$/);
      expect(isCuid(id)).toBe(true);
    }
  });

  it('does not repeat over 100,000 ids', () => {
    const ids = new Set(Array.from({ length: 100_000 }, createId));
    expect(ids.size).toBe(100_000);
  });

  it('spreads characters evenly (no bias from the random source)', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      for (const char of createId().slice(1)) counts.set(char, (counts.get(char) ?? 0) + 1);
    }
    const values = [...counts.values()];
    expect(counts.size).toBe(36);
    // Every base-36 digit within ±10% of the mean over 460,000 characters.
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    for (const n of values) expect(Math.abs(n - mean) / mean).toBeLessThan(0.1);
  });
});
