// The shapes shared by the generation service and the starter of answers.
import type { GenerationLog } from '../ai/generation-log.js';
import type { AiProvider } from '../ai/provider.js';
import type { FairScheduler, Ticket } from '../ai/scheduler.js';
import type { StopSignals } from '../ai/stop-signals.js';
import type { EventBus } from '../events/event-bus.js';
import type { Metrics } from '../infra/metrics.js';
import type { GenerationQueue } from '../queue/generation-queue.js';
import type { ConversationRepository } from '../repositories/conversation.repository.js';
import type { GenerationRepository } from '../repositories/generation.repository.js';
import type { MessageRepository } from '../repositories/message.repository.js';
import type { Logger } from '../utils/logger.js';
import type { AiPolicy } from './ai-policy.js';
import type { AnswerAttachments } from './answer-attachments.js';
import type { AnswerCap } from './answer-cap.js';

export interface GenerationRef {
  id: string;
  messageId: string;
}

/** The user message an answer answers: where it sits decides what the answer reads. */
export interface Question {
  id: string;
  conversationId: string;
  createdAt: Date;
}

/**
 * One answer's place in its user's cap, reserved before anything is stored and released when the
 * answer does not start after all (or ends). In-process a scheduler ticket; queued, a place in
 * the cluster-wide cap whose id becomes the answer's generation id.
 */
export type AnswerPlace =
  | { kind: 'inline'; userId: string; ticket: Ticket; release(): void }
  | { kind: 'queued'; userId: string; id: string; rank: number; release(): void };

/** With Redis: the queue, the cluster-wide cap and how long an unclaimed answer may wait. */
export interface QueueMode {
  jobs: GenerationQueue;
  cap: AnswerCap;
  /** An answer no worker has taken this long is failed (its lease, see lease-sweeper.ts). */
  queueLeaseMs: number;
}

export interface GenerationDeps {
  provider: AiProvider | undefined;
  generations: GenerationRepository;
  messages: MessageRepository;
  conversations: ConversationRepository;
  log: GenerationLog;
  stops: StopSignals;
  scheduler: FairScheduler;
  policy: AiPolicy;
  /** The files of the messages an answer reads. */
  files: AnswerAttachments;
  events: EventBus;
  metrics: Metrics;
  logger: Logger;
  titles: boolean;
  /** Set with Redis: answers are queued for workers instead of run here. */
  queue?: QueueMode | undefined;
}
