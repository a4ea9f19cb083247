// Periodic housekeeping (the attachment cleanup): a timer in one process, a BullMQ job scheduler
// with Redis, so that however many instances and workers run, each run happens once, on whichever
// process takes it, and a run that fails is simply tried again at the next interval.
import { Queue, Worker } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';

export const MAINTENANCE_QUEUE = 'parley-maintenance';

export type StopMaintenance = () => Promise<void>;

/** Runs `task` every `everyMs` in this process; a run still going delays the next one. */
export function scheduleInProcess(
  task: () => Promise<unknown>,
  everyMs: number,
  onError: (error: unknown) => void,
): StopMaintenance {
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    running ??= task()
      .catch(onError)
      .finally(() => (running = undefined));
  }, everyMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

/** Runs `task` every `everyMs` somewhere in the cluster: a repeatable BullMQ job. */
export function scheduleOnQueue(
  url: string,
  options: RedisOptions,
  jobName: string,
  task: () => Promise<unknown>,
  everyMs: number,
  onError: (error: unknown) => void,
): StopMaintenance {
  const connection = new Redis(url, { ...options, maxRetriesPerRequest: null });
  connection.on('error', () => undefined); // reported by the shared connections already
  const queue = new Queue(MAINTENANCE_QUEUE, { connection });
  queue.on('error', () => undefined);
  // Every process upserts the same scheduler: the last interval configured wins, one job a run.
  queue
    .upsertJobScheduler(
      jobName,
      { every: everyMs },
      { name: jobName, opts: { removeOnComplete: 100, removeOnFail: 100 } },
    )
    .catch(onError);
  const worker = new Worker(
    MAINTENANCE_QUEUE,
    async (job) => {
      if (job.name === jobName) await task();
    },
    { connection, concurrency: 1 },
  );
  worker.on('error', onError);
  worker.on('failed', (_job, error) => onError(error));
  return async () => {
    await worker.close();
    await queue.close();
    connection.disconnect();
  };
}
