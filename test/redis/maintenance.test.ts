// The periodic housekeeping with Redis (issue 10: the attachment cleanup is "a BullMQ repeatable
// job with Redis"): however many processes schedule it, each interval's run happens once, on one
// of them; and a process that stops leaves the others running it.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { scheduleOnQueue, type StopMaintenance } from '../../src/queue/maintenance.js';
import { startTestRedis, type TestRedis } from '../support/redis-server.js';

const EVERY_MS = 400;
let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => redis?.dispose());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it('runs once per interval across three processes, and goes on when one stops', async () => {
  const runs: Array<{ process: number; at: number; end: number }> = [];
  const errors: unknown[] = [];
  const started = Date.now();
  const processes: StopMaintenance[] = [0, 1, 2].map((n) =>
    scheduleOnQueue(
      redis.url,
      { maxRetriesPerRequest: null },
      'attachment-cleanup',
      async () => {
        const run = { process: n, at: Date.now() - started, end: Infinity };
        runs.push(run);
        await sleep(50);
        run.end = Date.now() - started;
      },
      EVERY_MS,
      (error) => errors.push(error),
    ),
  );
  try {
    await sleep(EVERY_MS * 6);
    await processes[0]!();
    const before = runs.length;
    await sleep(EVERY_MS * 4);
    const windowMs = Date.now() - started;
    // One run per interval in all (a first run at once, then one every EVERY_MS), not three: on
    // a loaded machine a late run may come close to the next, never as one per process.
    expect(runs.length).toBeGreaterThanOrEqual(4);
    expect(runs.length).toBeLessThanOrEqual(Math.ceil(windowMs / EVERY_MS) + 2);
    // Runs never overlap: each starts after the previous one finished.
    for (let i = 1; i < runs.length; i++)
      expect(runs[i]!.at).toBeGreaterThanOrEqual(runs[i - 1]!.end);
    // After process 0 stopped, the others kept running it.
    const after = runs.slice(before);
    expect(after.length).toBeGreaterThanOrEqual(2);
    expect(after.every((r) => r.process !== 0)).toBe(true);
    expect(errors).toEqual([]);
  } finally {
    await Promise.all(processes.slice(1).map((stop) => stop()));
  }
});
