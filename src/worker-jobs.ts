// Starts taking generation jobs from the queue in this process (a worker, or an API instance with
// WORKERS_INLINE): undefined when there is no queue (no Redis, or AI off).
import type { Container } from './container.js';
import { startAnswerWorker, type AnswerWorker } from './queue/generation-queue.js';

export function startAnswerWorkerOf(container: Container): AnswerWorker | undefined {
  const { config, answerJobs, redis, logger } = container;
  if (!answerJobs || !redis || !config.REDIS_URL) return undefined;
  const concurrency =
    config.WORKER_CONCURRENCY ??
    config.AI_CONCURRENCY ??
    (config.AI_PROVIDER === 'local' ? config.AI_LOCAL_PARALLEL : 32);
  // A Redis that is away errors on every reconnect attempt: said once every 10 s at most.
  let lastWarned = 0;
  return startAnswerWorker(
    config.REDIS_URL,
    redis.queueOptions,
    concurrency,
    (job) => answerJobs.execute(job),
    (error) => {
      if (Date.now() - lastWarned < 10_000) return;
      lastWarned = Date.now();
      logger.warn(`Generation queue: ${error.message}`);
    },
  );
}
