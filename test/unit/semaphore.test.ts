// The keyed semaphore behind SEARCH_CONCURRENCY_PER_USER: a limit per key, keys independent.
import { describe, expect, it } from 'vitest';
import { createKeyedSemaphore } from '../../src/utils/semaphore.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('createKeyedSemaphore', () => {
  it('runs at most `limit` tasks per key at once, in arrival order, and keys apart', async () => {
    const slots = createKeyedSemaphore(1);
    const running = new Map<string, number>();
    const most = new Map<string, number>();
    const order: string[] = [];
    const releases: Array<() => void> = [];
    const task = (key: string, name: string) =>
      slots.run(key, async () => {
        running.set(key, (running.get(key) ?? 0) + 1);
        most.set(key, Math.max(most.get(key) ?? 0, running.get(key)!));
        order.push(name);
        await new Promise<void>((resolve) => releases.push(resolve));
        running.set(key, running.get(key)! - 1);
        return name;
      });
    const all = Promise.all([task('a', 'a1'), task('a', 'a2'), task('a', 'a3'), task('b', 'b1')]);
    await tick();
    // b's task did not wait behind a's queue.
    expect(order).toEqual(['a1', 'b1']);
    while (releases.length) {
      releases.shift()!();
      await tick();
    }
    expect(await all).toEqual(['a1', 'a2', 'a3', 'b1']);
    expect(order).toEqual(['a1', 'b1', 'a2', 'a3']);
    expect(most).toEqual(
      new Map([
        ['a', 1],
        ['b', 1],
      ]),
    );
    expect(slots.size).toBe(0);
  });

  it('frees the slot when a task fails', async () => {
    const slots = createKeyedSemaphore(1);
    await expect(slots.run('a', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await slots.run('a', () => Promise.resolve('next'))).toBe('next');
    expect(slots.size).toBe(0);
  });
});
