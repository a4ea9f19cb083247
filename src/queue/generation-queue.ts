// Generation jobs on BullMQ (scale-out): an API instance starts an answer and queues its job; a
// worker (or an API instance with WORKERS_INLINE) runs it. One attempt only: an answer that
// streamed tokens is never run again blindly (the worker's claim decides, see answer-jobs.ts).
import { Queue, Worker, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { ConversationSettings } from '../db/schema.js';

export const GENERATION_QUEUE = 'parley-generations';
const JOB_NAME = 'answer';

/** Everything a worker needs to run an answer without asking the database what it already knew. */
export interface AnswerJob {
  generationId: string;
  conversationId: string;
  messageId: string;
  /** The user who asked (their place in the cluster-wide cap is released at the end). */
  userId: string;
  question: { id: string; createdAt: string };
  model: string;
  settings: ConversationSettings;
  /** When the API started the answer (epoch ms): time to first token counts from here. */
  startedAt: number;
}

export interface GenerationQueue {
  /** Queues an answer; `priority` 0 goes first (a user's first answer before anyone's second). */
  enqueue(job: AnswerJob, priority: number): Promise<void>;
  /** Jobs waiting and running, for /metrics. */
  counts(): Promise<{ waiting: number; active: number }>;
  close(): Promise<void>;
}

export function createGenerationQueue(url: string, options: RedisOptions): GenerationQueue {
  // Fails at once while Redis is away (the caller answers 503 or fails the answer), never queues
  // the command in memory.
  const connection = new Redis(url, {
    ...options,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    // A Redis that does not answer (half-open connection) fails the add rather than holding it.
    commandTimeout: 2_000,
  });
  connection.on('error', () => undefined); // reported by the shared connections already
  const queue = new Queue<AnswerJob>(GENERATION_QUEUE, {
    connection,
    defaultJobOptions: {
      attempts: 1,
      removeOnComplete: { age: 3_600, count: 10_000 },
      removeOnFail: { age: 24 * 3_600 },
    },
  });
  queue.on('error', () => undefined);
  return {
    enqueue: async (job, priority) => {
      // BullMQ priorities run 1 (first) upwards; every job has one, so they order among themselves.
      await queue.add(JOB_NAME, job, { jobId: job.generationId, priority: priority + 1 });
    },
    counts: async () => {
      const counts = await queue.getJobCounts('waiting', 'prioritized', 'active');
      return {
        waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
        active: counts.active ?? 0,
      };
    },
    close: async () => {
      await queue.close();
      connection.disconnect();
    },
  };
}

export interface AnswerWorker {
  /** Stops taking jobs and waits for the running ones (they end by themselves: see drain). */
  close(): Promise<void>;
}

export function startAnswerWorker(
  url: string,
  options: RedisOptions,
  concurrency: number,
  run: (job: AnswerJob) => Promise<void>,
  onError: (error: Error) => void,
): AnswerWorker {
  const connection = new Redis(url, { ...options, maxRetriesPerRequest: null });
  connection.on('error', () => undefined);
  const worker = new Worker<AnswerJob>(GENERATION_QUEUE, (job: Job<AnswerJob>) => run(job.data), {
    connection,
    concurrency,
    // A killed worker's job comes back once; the claim then fails it if it had streamed tokens.
    maxStalledCount: 1,
  });
  worker.on('error', onError);
  return {
    close: async () => {
      await worker.close();
      connection.disconnect();
    },
  };
}
