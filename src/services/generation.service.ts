// AI answers (SPEC §7): start one for a user message, run it in the background into the
// generation log, finish or fail it in the database, stop it for any participant, and title a
// new conversation after its first exchange.
import { fitContext, toChat } from '../ai/context.js';
import type { GenerationListener, GenerationLog } from '../ai/generation-log.js';
import { publishStart, RunFailure, streamAnswer, terminalSeq } from '../ai/generation-runner.js';
import { ProviderError, type AiProvider } from '../ai/provider.js';
import type { StopSignals } from '../ai/stop-signals.js';
import type { ConversationSettings, Generation } from '../db/schema.js';
import type { EventBus } from '../events/event-bus.js';
import { AppError } from '../errors.js';
import type { Metrics } from '../infra/metrics.js';
import type { ConversationRepository } from '../repositories/conversation.repository.js';
import type { GenerationRepository } from '../repositories/generation.repository.js';
import type { MessageRepository } from '../repositories/message.repository.js';
import { describeError, type Logger } from '../utils/logger.js';
import { requireRole } from './access.js';
import type { Principal } from './session.service.js';
import type { MessageViews } from './views.js';

export interface GenerationRef {
  id: string;
  messageId: string;
}

const DEFAULT_TITLE = '新对话';

export class GenerationService {
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly deps: {
      provider: AiProvider | undefined;
      generations: GenerationRepository;
      messages: MessageRepository;
      conversations: ConversationRepository;
      log: GenerationLog;
      stops: StopSignals;
      events: EventBus;
      views: MessageViews;
      metrics: Metrics;
      logger: Logger;
      maxOutputTokens: number;
      titles: boolean;
    },
  ) {}

  /**
   * Starts the AI's answer to a user message when the conversation has AI on: the assistant
   * message exists (SENDING) and the start event is published before this returns; the answer
   * streams in the background.
   */
  async answer(
    requestedBy: string | null,
    conversationId: string,
    userMessageId: string,
    settings: ConversationSettings | null,
  ): Promise<GenerationRef | undefined> {
    const { provider } = this.deps;
    if (!provider || settings?.aiEnabled === false) return undefined;
    const { generation, message } = await this.deps.generations.start({
      conversationId,
      userMessageId,
      requestedBy,
      provider: provider.name,
      model: settings?.model ?? provider.defaultModel(),
    });
    this.deps.events.publish('message.created', {
      conversationId,
      message: await this.deps.views.one(message),
    });
    publishStart(this.deps.log, {
      generationId: generation.id,
      messageId: message.id,
      conversationId,
    });
    const run = this.run(provider, generation, settings ?? {}).finally(() =>
      this.running.delete(run),
    );
    this.running.add(run);
    return { id: generation.id, messageId: message.id };
  }

  /** Any participant may stop a generation; false when it was not running. */
  async stop(
    principal: Principal,
    generationId: string,
  ): Promise<{ generationId: string; stopped: boolean }> {
    await this.access(principal, generationId);
    return { generationId, stopped: this.deps.stops.stop(generationId) };
  }

  /** The generation, when the caller may follow it (a participant of its conversation). */
  async access(principal: Principal, generationId: string): Promise<Generation> {
    return requireRole(
      await this.deps.generations.getAccess(generationId, principal.userId),
      'MEMBER',
      'Generation',
    ).generation;
  }

  /**
   * Opens a generation the caller may see for streaming: checks access and that the stream is
   * still kept (404 otherwise: the message holds the answer), then returns a synchronous
   * `follow` that replays events after `afterSeq` and calls back with each new one.
   */
  async openStream(
    principal: Principal,
    generationId: string,
    afterSeq: number,
  ): Promise<(listener: GenerationListener) => () => void> {
    await this.access(principal, generationId);
    if (!this.deps.log.read(generationId, -1)) {
      throw new AppError(
        'NOT_FOUND',
        'This generation is no longer streamed; read its message instead',
      );
    }
    return (listener) =>
      this.deps.log.follow(generationId, afterSeq, listener) ?? (() => undefined);
  }

  /** At start: generations a crashed process left running are failed, not SENDING forever. */
  async recoverInterrupted(): Promise<number> {
    return this.deps.generations.failInterrupted();
  }

  /** Waits for running generations (graceful shutdown), stopping them after `graceMs`. */
  async drain(graceMs: number): Promise<void> {
    const timer = setTimeout(() => {
      for (const id of [...this.runningIds]) this.deps.stops.stop(id);
    }, graceMs);
    await Promise.allSettled([...this.running]);
    clearTimeout(timer);
  }

  private readonly runningIds = new Set<string>();

  private async run(provider: AiProvider, generation: Generation, settings: ConversationSettings) {
    const { log, metrics, generations } = this.deps;
    const ids = {
      generationId: generation.id,
      messageId: generation.messageId,
      conversationId: generation.conversationId,
    };
    const { signal, release } = this.deps.stops.register(generation.id);
    this.runningIds.add(generation.id);
    metrics.activeGenerations.inc();
    const startedAt = Date.now();
    try {
      const { contextWindow } = await provider.capabilities(generation.model);
      const branch = generation.userMessageId
        ? await this.deps.messages.branch(generation.userMessageId)
        : [];
      const fitted = await fitContext({
        provider,
        model: generation.model,
        contextWindow,
        systemPrompt: settings.systemPrompt,
        history: toChat(branch),
        maxOutputTokens: settings.maxOutputTokens ?? this.deps.maxOutputTokens,
      });
      const result = await streamAnswer(
        provider,
        log,
        ids,
        {
          messages: fitted.messages,
          model: generation.model,
          temperature: settings.temperature,
          maxOutputTokens: fitted.maxOutputTokens,
        },
        signal,
        {
          onFirstToken: () => {
            metrics.timeToFirstToken.observe(
              { provider: provider.name },
              (Date.now() - startedAt) / 1000,
            );
            void generations.markFirstToken(generation.id, new Date()).catch(() => undefined);
          },
          onProgress: (content) =>
            void generations.saveProgress(generation.messageId, content).catch(() => undefined),
        },
      );
      const message = await generations.finish(generation, {
        ...result,
        model: generation.model,
        // What the answer saw: the oldest messages are the ones left out when the window is full.
        metadata: {
          context: {
            included: fitted.includedIds.length,
            dropped: fitted.dropped,
            oldestIncludedId: fitted.includedIds[0] ?? null,
          },
        },
      });
      log.publish({
        type: 'end',
        seq: terminalSeq(log, generation.id),
        ...ids,
        status: 'SENT',
        finishReason: result.finishReason,
        usage: result.usage,
        model: generation.model,
      });
      this.deps.events.publish('message.updated', {
        conversationId: generation.conversationId,
        message: await this.deps.views.one(message),
      });
      metrics.generations.inc({
        provider: provider.name,
        status: result.stopped ? 'stopped' : 'completed',
      });
      metrics.tokensOut.inc({ provider: provider.name }, result.usage.completionTokens);
      if (this.deps.titles && !result.stopped)
        await this.titleIfNew(provider, generation, branch.at(-1)?.content, result.content);
    } catch (error) {
      await this.failed(provider, generation, ids, error);
    } finally {
      release();
      this.runningIds.delete(generation.id);
      metrics.activeGenerations.dec();
    }
  }

  private async failed(
    provider: AiProvider,
    generation: Generation,
    ids: { generationId: string; messageId: string; conversationId: string },
    error: unknown,
  ) {
    const reason = error instanceof RunFailure ? error.reason : error;
    const partial = error instanceof RunFailure ? error.partial : '';
    const known = reason instanceof ProviderError;
    if (!known)
      this.deps.logger.error('Generation failed', {
        generationId: generation.id,
        ...describeError(reason),
      });
    const text = known ? reason.message : 'The AI answer failed; try again';
    const message = await this.deps.generations
      .fail(generation, partial, text)
      .catch((e: unknown) => {
        this.deps.logger.error('Could not record a failed generation', describeError(e));
        return undefined;
      });
    this.deps.log.publish({
      type: 'error',
      seq: terminalSeq(this.deps.log, generation.id),
      ...ids,
      status: 'FAILED',
      error: text,
      code: known ? reason.kind : 'internal',
    });
    if (message) {
      this.deps.events.publish('message.updated', {
        conversationId: generation.conversationId,
        message: await this.deps.views.one(message),
      });
    }
    this.deps.metrics.generations.inc({ provider: provider.name, status: 'failed' });
  }

  /** After a conversation's first exchange, a short title in place of 新对话 (SPEC §7). */
  private async titleIfNew(
    provider: AiProvider,
    generation: Generation,
    question: string | undefined,
    answer: string,
  ) {
    try {
      const conversation = await this.deps.conversations.getById(generation.conversationId);
      if (!conversation || conversation.title !== DEFAULT_TITLE || !question) return;
      let title = '';
      for await (const chunk of provider.stream(
        {
          model: generation.model,
          maxOutputTokens: 24,
          temperature: 0.2,
          messages: [
            {
              role: 'system',
              content:
                'Reply with a short title (at most 6 words) for this conversation, and nothing else.',
            },
            { role: 'user', content: `${question.slice(0, 1000)}\n\n${answer.slice(0, 1000)}` },
          ],
        },
        new AbortController().signal,
      )) {
        if (chunk.type === 'delta') title += chunk.text;
      }
      const clean = title
        .replace(/[\r\n"“”「」*#]+/g, ' ')
        .replace(/\s+/g, ' ')
        .trim()
        .slice(0, 80);
      if (!clean) return;
      const updated = await this.deps.conversations.renameIfTitled(
        generation.conversationId,
        DEFAULT_TITLE,
        clean,
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
