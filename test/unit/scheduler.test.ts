// The fair scheduler on its own: the per-user cap, whose turn comes next, and stopping a wait.
import { describe, expect, it } from 'vitest';
import { FairScheduler, type Ticket } from '../../src/ai/scheduler.js';

const never = new AbortController().signal;

/** Reserves and asks for a turn; records the order in which turns are granted. */
function queue(scheduler: FairScheduler, order: string[], userId: string, label: string) {
  const ticket = scheduler.reserve(userId)!;
  if (ticket.startNow()) order.push(label);
  else void ticket.started(never).then(() => order.push(label));
  return ticket;
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('FairScheduler', () => {
  it('refuses a user’s reservation past the cap, and gives the place back on release', () => {
    const scheduler = new FairScheduler({ concurrency: 1, maxPendingPerUser: 2 });
    const first = scheduler.reserve('a')!;
    expect(scheduler.reserve('a')).toBeDefined();
    expect(scheduler.reserve('a')).toBeUndefined();
    expect(scheduler.reserve('b')).toBeDefined();
    first.release();
    first.release(); // idempotent: one place back, not two
    expect(scheduler.reserve('a')).toBeDefined();
    expect(scheduler.reserve('a')).toBeUndefined();
  });

  it('gives a free slot to the user served longest ago, then the one with fewest running', async () => {
    const scheduler = new FairScheduler({ concurrency: 1, maxPendingPerUser: 3 });
    const order: string[] = [];
    const tickets: Ticket[] = [
      queue(scheduler, order, 'a', 'a0'),
      queue(scheduler, order, 'a', 'a1'),
      queue(scheduler, order, 'a', 'a2'),
      queue(scheduler, order, 'b', 'b0'),
      queue(scheduler, order, 'c', 'c0'),
    ];
    await flush();
    expect(order).toEqual(['a0']);
    expect(scheduler.stats()).toEqual({ running: 1, waiting: 4 });
    for (const label of ['a0', 'b0', 'c0', 'a1']) {
      tickets[['a0', 'a1', 'a2', 'b0', 'c0'].indexOf(label)]!.release();
      await flush();
    }
    expect(order).toEqual(['a0', 'b0', 'c0', 'a1', 'a2']);
  });

  it('never starts at once past the queue: a newcomer waits behind users already waiting', async () => {
    const scheduler = new FairScheduler({ concurrency: 1, maxPendingPerUser: 3 });
    const order: string[] = [];
    const running = queue(scheduler, order, 'a', 'a0');
    queue(scheduler, order, 'b', 'b0');
    running.release();
    const late = scheduler.reserve('c')!;
    expect(late.startNow()).toBe(false); // b0 holds the slot
    await flush();
    expect(order).toEqual(['a0', 'b0']);
  });

  it('a wait stopped by its signal leaves the queue and rejects', async () => {
    const scheduler = new FairScheduler({ concurrency: 1, maxPendingPerUser: 3 });
    const running = scheduler.reserve('a')!;
    expect(running.startNow()).toBe(true);
    const waiting = scheduler.reserve('b')!;
    const stop = new AbortController();
    const turn = waiting.started(stop.signal);
    stop.abort(new Error('stopped'));
    await expect(turn).rejects.toThrow('stopped');
    waiting.release();
    expect(scheduler.stats()).toEqual({ running: 1, waiting: 0 });
    running.release();
    expect(scheduler.stats()).toEqual({ running: 0, waiting: 0 });
  });

  it('a ticket released while it waits leaves the queue and is never granted', async () => {
    const scheduler = new FairScheduler({ concurrency: 1, maxPendingPerUser: 3 });
    const order: string[] = [];
    const running = queue(scheduler, order, 'a', 'a0');
    const abandoned = queue(scheduler, order, 'b', 'b0');
    queue(scheduler, order, 'c', 'c0');
    abandoned.release();
    running.release();
    await flush();
    expect(order).toEqual(['a0', 'c0']);
    expect(scheduler.stats()).toEqual({ running: 1, waiting: 0 });
  });
});
