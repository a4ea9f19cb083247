// Fails the answers whose lease expired (scale-out): their process was killed, or no worker took
// them from the queue in time. Every process sweeps; each expired answer is failed by exactly one
// (GenerationRepository.failExpired), which tells its followers with the error event. Nothing
// else is ever failed: restarting one process does not touch another's running answers.
import type { GenerationLog, TerminalEvent } from '../ai/generation-log.js';
import type { Generation } from '../db/schema.js';
import { INTERRUPTED, type GenerationRepository } from '../repositories/generation.repository.js';
import { describeError, type Logger } from '../utils/logger.js';
import type { AnswerCap } from './answer-cap.js';

export function startLeaseSweeper(deps: {
  generations: GenerationRepository;
  log: GenerationLog;
  cap: AnswerCap;
  logger: Logger;
  intervalMs: number;
}): () => void {
  let sweeping = false;
  const sweep = async () => {
    if (sweeping) return;
    sweeping = true;
    try {
      const failed = await deps.generations.failExpired();
      for (const generation of failed) {
        // After whatever its dead process stored, unless it had stored its end already; tried
        // again until Redis takes it (the followers wait for this end).
        void untilDone(() => deps.log.appendTerminal(interruptedEnd(generation)));
        if (generation.requestedBy)
          await deps.cap.release(generation.requestedBy, generation.id).catch(() => undefined);
      }
      if (failed.length)
        deps.logger.warn(`${failed.length} interrupted AI answer(s) marked FAILED`);
    } catch (error) {
      deps.logger.warn('Could not sweep expired answer leases', describeError(error));
    } finally {
      sweeping = false;
    }
  };
  // Jittered, so processes started together do not sweep in step.
  const timer = setInterval(() => void sweep(), deps.intervalMs * (0.8 + Math.random() * 0.4));
  timer.unref();
  void sweep();
  return () => clearInterval(timer);
}

/** The end told of an answer whose process died: the error event, seq given by appendTerminal. */
export function interruptedEnd(generation: Generation): TerminalEvent {
  return {
    type: 'error',
    generationId: generation.id,
    messageId: generation.messageId,
    conversationId: generation.conversationId,
    status: 'FAILED',
    error: INTERRUPTED,
    code: 'interrupted',
  };
}

/** Runs `work` until it succeeds (every 1 s after the first failure), for at most 10 minutes. */
async function untilDone(work: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      await work();
      return;
    } catch {
      if (Date.now() > deadline) return;
      await new Promise((resolve) => setTimeout(resolve, 1_000).unref());
    }
  }
}
