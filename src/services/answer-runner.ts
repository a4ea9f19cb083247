// Runs one answer once its request is on its way: the provider's chunks into the generation log
// (through the runner's coalescing), the result into the database, the end or the failure to
// every follower, and a title for a new conversation after its first exchange (SPEC §7).
import type { FittedContext } from '../ai/context.js';
import type { GenerationLog } from '../ai/generation-log.js';
import { RunFailure, streamAnswer } from '../ai/generation-runner.js';
import { ProviderError, type AiProvider, type StreamChunk } from '../ai/provider.js';
import { suggestTitle } from '../ai/title.js';
import type { Generation } from '../db/schema.js';
import type { EventBus } from '../events/event-bus.js';
import type { Metrics } from '../infra/metrics.js';
import type { ConversationRepository } from '../repositories/conversation.repository.js';
import type { GenerationRepository } from '../repositories/generation.repository.js';
import { describeError, type Logger } from '../utils/logger.js';

const DEFAULT_TITLE = '新对话';

/** An answer's request, already sent: what it was built from and the chunks coming back. */
export interface Upstream {
  fitted: FittedContext;
  /** The user message being answered (for the title). */
  question: string | undefined;
  chunks: AsyncIterable<StreamChunk>;
}

export class AnswerRunner {
  constructor(
    private readonly deps: {
      generations: GenerationRepository;
      conversations: ConversationRepository;
      log: GenerationLog;
      events: EventBus;
      metrics: Metrics;
      logger: Logger;
      titles: boolean;
    },
  ) {}

  async run(
    provider: AiProvider,
    generation: Generation,
    upstream: Promise<Upstream>,
    startedAt: number,
  ) {
    const { log, metrics, generations } = this.deps;
    const ids = {
      generationId: generation.id,
      messageId: generation.messageId,
      conversationId: generation.conversationId,
    };
    metrics.activeGenerations.inc();
    // The seq of the last event out: the terminal event takes the next (start is 0).
    let lastSeq = 0;
    try {
      const { fitted, question, chunks } = await upstream;
      const result = await streamAnswer(chunks, log, ids, {
        onFirstToken: () => {
          metrics.timeToFirstToken.observe(
            { provider: provider.name },
            (Date.now() - startedAt) / 1000,
          );
          // After the first delta has gone out: on PGlite the write runs on this thread.
          const at = new Date();
          setImmediate(
            () => void generations.markFirstToken(generation.id, at).catch(() => undefined),
          );
        },
        onProgress: (content) =>
          void generations.saveProgress(generation.messageId, content).catch(() => undefined),
      });
      lastSeq = result.lastSeq;
      const finished = await generations.finish(generation, {
        ...result,
        model: generation.model,
        // What the answer saw: the oldest messages are the ones left out when the window is full.
        metadata: {
          generationId: generation.id,
          context: {
            included: fitted.includedIds.length,
            dropped: fitted.dropped,
            oldestIncludedId: fitted.includedIds[0] ?? null,
          },
        },
      });
      // Already ended by another process (its lease had expired): that one told the followers.
      if (!finished) return;
      log.append({
        type: 'end',
        seq: result.lastSeq + 1,
        ...ids,
        status: 'SENT',
        finishReason: result.finishReason,
        usage: result.usage,
        model: generation.model,
      });
      // No message:updated: the participants have the text from the deltas, and ai:stream:end
      // carries what else changed. Sending the whole answer again would double its bytes.
      metrics.generations.inc({
        provider: provider.name,
        status: result.stopped ? 'stopped' : 'completed',
      });
      metrics.tokensOut.inc({ provider: provider.name }, result.usage.completionTokens);
      if (this.deps.titles && !result.stopped && question)
        await this.titleIfNew(provider, generation, question, result.content);
    } catch (error) {
      if (error instanceof RunFailure) lastSeq = error.lastSeq;
      await this.failed(provider, generation, error, lastSeq);
    } finally {
      metrics.activeGenerations.dec();
    }
  }

  /** Ends an answer FAILED, its text so far kept, and tells its followers (after `lastSeq`). */
  async failed(provider: AiProvider, generation: Generation, error: unknown, lastSeq: number) {
    const ids = {
      generationId: generation.id,
      messageId: generation.messageId,
      conversationId: generation.conversationId,
    };
    const reason = error instanceof RunFailure ? error.reason : error;
    const partial = error instanceof RunFailure ? error.partial : '';
    const known = reason instanceof ProviderError;
    if (!known)
      this.deps.logger.error('Generation failed', {
        generationId: generation.id,
        ...describeError(reason),
      });
    const text = known ? reason.message : 'The AI answer failed; try again';
    const failed = await this.deps.generations
      .fail(generation, partial, text)
      // Undefined: it had ended already (failed by another process when its lease expired).
      .then((message) => message !== undefined)
      .catch((e: unknown) => {
        this.deps.logger.error('Could not record a failed generation', describeError(e));
        return true; // the followers still learn it failed
      });
    if (!failed) return;
    this.deps.log.append({
      type: 'error',
      seq: lastSeq + 1,
      ...ids,
      status: 'FAILED',
      error: text,
      code: known ? reason.kind : 'internal',
    });
    this.deps.metrics.generations.inc({ provider: provider.name, status: 'failed' });
  }

  /** After a conversation's first exchange, a short title in place of 新对话 (SPEC §7). */
  private async titleIfNew(
    provider: AiProvider,
    generation: Generation,
    question: string,
    answer: string,
  ) {
    try {
      const conversation = await this.deps.conversations.getById(generation.conversationId);
      if (!conversation || conversation.title !== DEFAULT_TITLE) return;
      const title = await suggestTitle(provider, generation.model, question, answer);
      if (!title) return;
      const updated = await this.deps.conversations.renameIfTitled(
        generation.conversationId,
        DEFAULT_TITLE,
        title,
      );
      if (updated) {
        this.deps.events.publish('conversation.updated', {
          conversationId: generation.conversationId,
          changes: ['title'],
          by: 'ai-assistant',
        });
      }
    } catch (error) {
      this.deps.logger.warn('Could not title a conversation', describeError(error));
    }
  }
}
