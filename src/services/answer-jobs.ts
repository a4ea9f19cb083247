// The worker half of an answer (scale-out): takes a queued answer's lease, reads what it answers,
// asks the provider and runs the answer into the log and the database (AnswerRunner), renewing
// its lease and its user's place while it runs. An answer that already streamed tokens under a
// process that died is failed, never run again (its followers would see the text twice).
import type { GenerationLog } from '../ai/generation-log.js';
import type { AiProvider } from '../ai/provider.js';
import type { StopSignals } from '../ai/stop-signals.js';
import type { Generation } from '../db/schema.js';
import type { AnswerJob } from '../queue/generation-queue.js';
import { INTERRUPTED, type GenerationRepository } from '../repositories/generation.repository.js';
import type { MessageRepository } from '../repositories/message.repository.js';
import { describeError, type Logger } from '../utils/logger.js';
import type { AiPolicy } from './ai-policy.js';
import type { AnswerAttachments } from './answer-attachments.js';
import type { AnswerCap } from './answer-cap.js';
import { requestAnswer, stoppedBeforeItsTurn } from './answer-request.js';
import type { AnswerRunner, Upstream } from './answer-runner.js';
import { interruptedEnd } from './lease-sweeper.js';

export class AnswerJobs {
  /** Answers this process runs now, with the user whose place each holds. */
  private readonly running = new Map<string, { userId: string; done: Promise<void> }>();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly deps: {
      provider: AiProvider;
      generations: GenerationRepository;
      messages: MessageRepository;
      log: GenerationLog;
      stops: StopSignals;
      cap: AnswerCap;
      runner: AnswerRunner;
      policy: AiPolicy;
      files: AnswerAttachments;
      logger: Logger;
      /** This process, as a lease holder. */
      owner: string;
      leaseMs: number;
    },
  ) {
    this.heartbeat = setInterval(() => void this.renew(), Math.max(250, deps.leaseMs / 3));
    this.heartbeat.unref();
  }

  /** Runs one job to its end (the job's promise: BullMQ holds its lock meanwhile). */
  async execute(job: AnswerJob): Promise<void> {
    const { generations, log, owner, leaseMs } = this.deps;
    // A database blip is tried again: failing the job would leave the answer to its queue lease.
    const generation = await retried(() => generations.claim(job.generationId, owner, leaseMs));
    if (!generation) return; // ended already, or a live process holds it
    const done = this.run(job, generation).finally(() => {
      this.running.delete(generation.id);
      void this.deps.cap.release(job.userId, generation.id).catch(() => undefined);
    });
    this.running.set(generation.id, { userId: job.userId, done });
    await done;
    await log.flushed(generation.id);
  }

  /** Waits for the running answers (shutdown); they are stopped after `graceMs`. */
  async drain(graceMs: number): Promise<void> {
    const timer = setTimeout(() => {
      for (const id of this.running.keys()) void this.deps.stops.stop(id).catch(() => undefined);
    }, graceMs);
    await Promise.allSettled([...this.running.values()].map((answer) => answer.done));
    clearTimeout(timer);
    clearInterval(this.heartbeat);
  }

  private async run(job: AnswerJob, generation: Generation): Promise<void> {
    const { provider, log, stops, messages, policy, files } = this.deps;
    // A job that comes back after its worker died: the tokens it streamed stay; it ends there.
    const streamed = await retried(() => log.read(generation.id, 0));
    if (streamed && streamed.length > 0) {
      const partial = streamed.map((event) => (event.type === 'delta' ? event.delta : '')).join('');
      await this.interrupted(generation, partial);
      return;
    }
    const stop = stops.register(generation.id);
    try {
      const upstream: Promise<Upstream> = (async () => {
        if (stop.signal.aborted) return stoppedBeforeItsTurn();
        const history = await messages.history({
          id: job.question.id,
          conversationId: job.conversationId,
          createdAt: new Date(job.question.createdAt),
        });
        return requestAnswer(
          { provider, policy, files },
          job.model,
          job.settings,
          history,
          stop.signal,
        );
      })();
      upstream.catch(() => undefined);
      await this.deps.runner.run(provider, generation, upstream, job.startedAt);
    } finally {
      stop.release();
    }
  }

  private async interrupted(generation: Generation, partial: string) {
    const failed = await this.deps.generations
      .fail(generation, partial, INTERRUPTED)
      .catch(() => undefined);
    if (!failed) return;
    await this.deps.log.appendTerminal(interruptedEnd(generation));
  }

  private renewing = false;

  private async renew(): Promise<void> {
    if (this.running.size === 0 || this.renewing) return;
    this.renewing = true;
    const { generations, owner, leaseMs, cap, stops } = this.deps;
    try {
      const ids = [...this.running.keys()];
      const held = new Set(await generations.renewLeases(owner, ids, leaseMs));
      // Lost while this process could not renew (a stall, the database away): another process
      // has failed it and told its followers; going on would only bill tokens nobody sees.
      for (const id of ids) {
        if (!held.has(id) && this.running.has(id)) void stops.stop(id).catch(() => undefined);
      }
      await Promise.all(
        [...this.running].map(([id, { userId }]) => cap.renew(userId, id).catch(() => undefined)),
      );
    } catch (error) {
      this.deps.logger.warn('Could not renew the leases of running answers', describeError(error));
    } finally {
      this.renewing = false;
    }
  }
}

/** Runs `work`, trying again twice (after 250 and 1,000 ms) when it fails. */
async function retried<T>(work: () => Promise<T>): Promise<T> {
  for (const wait of [250, 1_000]) {
    try {
      return await work();
    } catch {
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
  return work();
}
