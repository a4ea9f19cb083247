// AI answers (SPEC §7): start one for a user message, run it in the background into the
// generation log, finish or fail it in the database, stop it for any participant, and title a
// new conversation after its first exchange.
import { readEagerly } from '../ai/chunk-queue.js';
import { fitContext, toChat, type FittedContext } from '../ai/context.js';
import type { GenerationListener, GenerationLog } from '../ai/generation-log.js';
import { publishStart, RunFailure, streamAnswer, terminalSeq } from '../ai/generation-runner.js';
import {
  ProviderError,
  type AiProvider,
  type GenerationRequest,
  type StreamChunk,
} from '../ai/provider.js';
import type { StopSignals } from '../ai/stop-signals.js';
import type { ConversationSettings, Generation, Message } from '../db/schema.js';
import type { EventBus } from '../events/event-bus.js';
import { AppError } from '../errors.js';
import type { Metrics } from '../infra/metrics.js';
import type { ConversationRepository } from '../repositories/conversation.repository.js';
import type { GenerationRepository } from '../repositories/generation.repository.js';
import type { MessageRepository } from '../repositories/message.repository.js';
import { createId } from '../utils/ids.js';
import { describeError, type Logger } from '../utils/logger.js';
import { requireRole } from './access.js';
import type { Principal } from './session.service.js';
import { toMessageView } from './views.js';

export interface GenerationRef {
  id: string;
  messageId: string;
}

const DEFAULT_TITLE = '新对话';

/** An answer's request, already sent: what it was built from and the chunks coming back. */
interface Upstream {
  fitted: FittedContext;
  /** The user message being answered (for the title). */
  question: string | undefined;
  chunks: AsyncIterable<StreamChunk>;
}

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
    const startedAt = Date.now(); // time to first token counts from here
    const generationId = createId();
    const model = settings?.model ?? provider.defaultModel();
    const stop = this.deps.stops.register(generationId);
    // The request goes upstream before the answer's rows are written: an upstream takes tens of
    // milliseconds to its first token, and the writes fit into that wait instead of adding to
    // the time to first token (bench/ttft.ts). Only the branch is read first (the database
    // serves one statement at a time on PGlite); the model's window and the fitting, which wait
    // for a local model to load, do not hold up the rows. Failures surface where `run` awaits.
    const branch = this.deps.messages.branch(userMessageId);
    const upstream: Promise<Upstream> = branch
      .then((rows) => this.request(provider, model, settings ?? {}, rows))
      .then(({ request, fitted, question }) => ({
        fitted,
        question,
        chunks: readEagerly(provider.stream(request, stop.signal)),
      }));
    upstream.catch(() => undefined);
    await branch.catch(() => undefined);
    // One turn of the event loop lets the HTTP client put the request on the wire before the
    // writes below (PGlite runs them on this thread).
    await new Promise((resolve) => setImmediate(resolve));
    let started: Awaited<ReturnType<GenerationRepository['start']>>;
    try {
      started = await this.deps.generations.start({
        id: generationId,
        conversationId,
        userMessageId,
        requestedBy,
        provider: provider.name,
        model,
      });
    } catch (error) {
      this.deps.stops.stop(generationId); // closes the upstream request already sent
      stop.release();
      throw error;
    }
    const { generation, message } = started;
    // A new answer has no author, reactions or files: its view needs no queries.
    this.deps.events.publish('message.created', {
      conversationId,
      message: toMessageView(message, undefined),
    });
    publishStart(this.deps.log, {
      generationId: generation.id,
      messageId: message.id,
      conversationId,
    });
    const run = this.run(provider, generation, upstream, stop, startedAt).finally(() =>
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
  ): Promise<((listener: GenerationListener) => () => void) | undefined> {
    await this.access(principal, generationId);
    const events = this.deps.log.read(generationId, -1);
    if (!events) {
      throw new AppError(
        'NOT_FOUND',
        'This generation is no longer streamed; read its message instead',
      );
    }
    // Ended, and the caller has seen the end (an EventSource reconnects after every stream
    // closes, with the last id): nothing will ever come, so there is nothing to follow.
    const last = events.at(-1);
    if (last && (last.type === 'end' || last.type === 'error') && last.seq <= afterSeq) {
      return undefined;
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

  /** The request for an answer to `userMessageId`: its branch, fitted into the model's window. */
  private async request(
    provider: AiProvider,
    model: string,
    settings: ConversationSettings,
    branch: Message[],
  ): Promise<{ request: GenerationRequest; fitted: FittedContext; question: string | undefined }> {
    const { contextWindow } = await provider.capabilities(model);
    const fitted = await fitContext({
      provider,
      model,
      contextWindow,
      systemPrompt: settings.systemPrompt,
      history: toChat(branch),
      maxOutputTokens: settings.maxOutputTokens ?? this.deps.maxOutputTokens,
    });
    return {
      request: {
        messages: fitted.messages,
        model,
        temperature: settings.temperature,
        maxOutputTokens: fitted.maxOutputTokens,
      },
      fitted,
      question: branch.at(-1)?.content,
    };
  }

  private async run(
    provider: AiProvider,
    generation: Generation,
    upstream: Promise<Upstream>,
    { release }: { release: () => void },
    startedAt: number,
  ) {
    const { log, metrics, generations } = this.deps;
    const ids = {
      generationId: generation.id,
      messageId: generation.messageId,
      conversationId: generation.conversationId,
    };
    this.runningIds.add(generation.id);
    metrics.activeGenerations.inc();
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
      await generations.finish(generation, {
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
      // No message:updated: the participants have the text from the deltas, and ai:stream:end
      // carries what else changed. Sending the whole answer again would double its bytes.
      metrics.generations.inc({
        provider: provider.name,
        status: result.stopped ? 'stopped' : 'completed',
      });
      metrics.tokensOut.inc({ provider: provider.name }, result.usage.completionTokens);
      if (this.deps.titles && !result.stopped)
        await this.titleIfNew(provider, generation, question, result.content);
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
    await this.deps.generations.fail(generation, partial, text).catch((e: unknown) => {
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
