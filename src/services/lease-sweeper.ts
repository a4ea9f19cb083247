// Fails the answers whose lease expired (scale-out): their process was killed, or no worker took
// them from the queue in time. Every process sweeps; each expired answer is failed by exactly one
// (GenerationRepository.failExpired), which tells its followers with the error event. Nothing
// else is ever failed: restarting one process does not touch another's running answers.
import type { GenerationLog } from '../ai/generation-log.js';
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
        const events = (await deps.log.read(generation.id, -1).catch(() => undefined)) ?? [];
        deps.log.append({
          type: 'error',
          seq: (events.at(-1)?.seq ?? 0) + 1,
          generationId: generation.id,
          messageId: generation.messageId,
          conversationId: generation.conversationId,
          status: 'FAILED',
          error: INTERRUPTED,
          code: 'interrupted',
        });
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
