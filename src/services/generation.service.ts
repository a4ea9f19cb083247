// AI answers (SPEC §7): start one for a user message when its user's turn comes (fairly shared,
// capped per user: SPEC §8), follow or stop it for any participant (and stop it when its
// conversation is deleted). Running it into the log and the database is answer-runner.ts.
import { ChunkQueue, readEagerly } from '../ai/chunk-queue.js';
import { fitContext, toChat } from '../ai/context.js';
import type { GenerationListener, GenerationLog } from '../ai/generation-log.js';
import { publishStart } from '../ai/generation-runner.js';
import type { AiProvider, GenerationRequest, StreamChunk } from '../ai/provider.js';
import type { FairScheduler, Ticket } from '../ai/scheduler.js';
import type { StopSignals } from '../ai/stop-signals.js';
import type { ConversationSettings, Generation, Message } from '../db/schema.js';
import type { EventBus } from '../events/event-bus.js';
import { AppError, conflict, notFound, rateLimited } from '../errors.js';
import type { Metrics } from '../infra/metrics.js';
import type { ConversationRepository } from '../repositories/conversation.repository.js';
import {
  ConversationGone,
  type GenerationRepository,
} from '../repositories/generation.repository.js';
import type { MessageRepository } from '../repositories/message.repository.js';
import { createId } from '../utils/ids.js';
import { describeError, type Logger } from '../utils/logger.js';
import { requireRole } from './access.js';
import type { AiPolicy } from './ai-policy.js';
import { watchAccess } from './access-watch.js';
import type { Principal } from './session.service.js';
import { AnswerRunner, type Upstream } from './answer-runner.js';
import { toMessageView } from './views.js';

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
 * Follows a generation's events (those after the resume point, then each new one, exactly once);
 * `lost` is called when the follower may no longer see it. Resolves, after the replay, with the
 * function that stops following.
 */
export type Follow = (listener: GenerationListener, lost: () => void) => Promise<() => void>;

/** How long a user over the cap is told to wait before trying again (answers take seconds). */
const CAP_RETRY_SECONDS = 5;

export class GenerationService {
  private readonly runner: AnswerRunner;
  /** Answers started here and not yet finished (waiting for their turn or running). */
  private readonly running = new Map<string, { conversationId: string; done: Promise<void> }>();

  constructor(
    private readonly deps: {
      provider: AiProvider | undefined;
      generations: GenerationRepository;
      messages: MessageRepository;
      conversations: ConversationRepository;
      log: GenerationLog;
      stops: StopSignals;
      scheduler: FairScheduler;
      policy: AiPolicy;
      events: EventBus;
      metrics: Metrics;
      logger: Logger;
      titles: boolean;
    },
  ) {
    this.runner = new AnswerRunner(deps);
    // A deleted conversation's answers stop at once: nobody may read them any more (SPEC §8).
    deps.events.subscribe('conversation.deleted', ({ conversationId }) => {
      for (const [id, answer] of this.running) {
        if (answer.conversationId === conversationId) this.deps.stops.stop(id);
      }
    });
  }

  /** Whether this server answers at all (AI_PROVIDER is not `none`). */
  get enabled(): boolean {
    return this.deps.provider !== undefined;
  }

  /**
   * A place for one more answer of this user (SPEC §8: AI_MAX_PENDING_PER_USER running or
   * waiting), or undefined when the user has used them up. Taken before anything is stored;
   * the caller releases it when the answer does not start after all.
   */
  tryReserve(userId: string): Ticket | undefined {
    return this.deps.scheduler.reserve(userId);
  }

  /** Like tryReserve, for a request that must have an answer: 409 when answers are off, 429 over the cap. */
  reserveOrRefuse(userId: string, settings: ConversationSettings | null | undefined): Ticket {
    if (!this.enabled) throw conflict('AI answers are turned off on this server');
    if (settings?.aiEnabled === false)
      throw conflict('AI answers are turned off in this conversation');
    const ticket = this.tryReserve(userId);
    if (!ticket) throw this.tooManyAnswers();
    return ticket;
  }

  /** 429 for a user whose answers are all running or waiting (SPEC §8). */
  tooManyAnswers(): AppError {
    const cap = this.deps.policy.maxPendingPerUser;
    return rateLimited(
      CAP_RETRY_SECONDS,
      `You already have ${cap} AI answers running or waiting; try again when one has finished`,
    );
  }

  /**
   * Starts the AI's answer to a user message, holding the ticket the caller reserved: the
   * assistant message exists (SENDING) and the start event is published before this returns;
   * the answer streams in the background once its turn comes. `replaces`: a regenerated answer
   * is an alternative of that one.
   */
  async answer(
    ticket: Ticket,
    question: Question,
    settings: ConversationSettings | null,
    replaces?: string,
  ): Promise<GenerationRef | undefined> {
    const { provider } = this.deps;
    if (!provider) {
      ticket.release();
      throw conflict('AI answers are turned off on this server');
    }
    const startedAt = Date.now(); // time to first token counts from here
    const generationId = createId();
    const model = this.deps.policy.modelFor(settings);
    const stop = this.deps.stops.register(generationId);
    // Known from now on, so deleting the conversation stops it even before its rows exist.
    const conversationId = question.conversationId;
    this.running.set(generationId, { conversationId, done: Promise.resolve() });
    let upstream: Promise<Upstream>;
    if (ticket.startNow()) {
      // The request goes upstream before the answer's rows are written: an upstream takes tens
      // of milliseconds to its first token, and the writes fit into that wait instead of adding
      // to the time to first token (bench/ttft.ts). Only the history is read first (PGlite
      // serves one statement at a time). Failures surface where `run` awaits.
      const history = this.deps.messages.history(question);
      upstream = history.then((rows) =>
        this.request(provider, model, settings ?? {}, rows, stop.signal),
      );
      upstream.catch(() => undefined);
      await history.catch(() => undefined);
      // One turn of the event loop lets the HTTP client put the request on the wire before the
      // writes below (PGlite runs them on this thread).
      await new Promise((resolve) => setImmediate(resolve));
    } else {
      // Its turn comes later: read the history then, so the answer sees what was said meanwhile.
      upstream = ticket.started(stop.signal).then(
        async () =>
          this.request(
            provider,
            model,
            settings ?? {},
            await this.deps.messages.history(question),
            stop.signal,
          ),
        () => stoppedBeforeItsTurn(),
      );
      upstream.catch(() => undefined);
    }
    let started: Awaited<ReturnType<GenerationRepository['start']>>;
    try {
      started = await this.deps.generations.start({
        id: generationId,
        conversationId: question.conversationId,
        userMessageId: question.id,
        requestedBy: ticket.userId,
        provider: provider.name,
        model,
        replaces,
      });
    } catch (error) {
      this.deps.stops.stop(generationId); // closes the upstream request already sent
      stop.release();
      ticket.release();
      this.running.delete(generationId);
      if (error instanceof ConversationGone) throw notFound('Conversation');
      // The question is stored and was announced: the send stands, without an answer.
      this.deps.logger.error('Could not start an AI answer', {
        conversationId,
        ...describeError(error),
      });
      return undefined;
    }
    const { generation, message } = started;
    // A new answer has no author, reactions or files: its view needs no queries.
    this.deps.events.publish('message.created', {
      conversationId: question.conversationId,
      message: toMessageView(message, undefined),
    });
    const ids = {
      generationId: generation.id,
      messageId: message.id,
      conversationId: question.conversationId,
    };
    publishStart(this.deps.log, ids);
    this.deps.events.publish('generation.started', ids);
    const done = this.runner
      .run(provider, generation, upstream, startedAt)
      .finally(() => {
        stop.release();
        ticket.release();
      })
      .finally(() => this.running.delete(generation.id));
    this.running.set(generation.id, { conversationId, done });
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
   * still kept (404 otherwise: the message holds the answer), then returns a synchronous `follow`
   * that replays events after `afterSeq` and calls back with each new one, until the caller
   * leaves the conversation, it is deleted or the session ends (then `lost`).
   */
  async openStream(
    principal: Principal,
    generationId: string,
    afterSeq: number,
  ): Promise<Follow | undefined> {
    const generation = await this.access(principal, generationId);
    const events = await this.deps.log.read(generationId, -1);
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
    return async (listener, lost) => {
      let unfollow: (() => void) | undefined;
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        unwatch();
        unfollow?.();
        lost();
      };
      // Watched before anything is sent, then checked again: a removal that landed between the
      // access check above and this subscription is caught by the second check.
      const unwatch = watchAccess(
        this.deps.events,
        { ...principal, conversationId: generation.conversationId },
        end,
      );
      const following = await this.deps.log.follow(generationId, afterSeq, (event) => {
        if (!ended) listener(event);
      });
      if (ended) following?.();
      else unfollow = following;
      this.access(principal, generationId).catch(end);
      return () => {
        ended = true;
        unwatch();
        unfollow?.();
      };
    };
  }

  /** At start: generations a crashed process left running are failed, not SENDING forever. */
  async recoverInterrupted(): Promise<number> {
    return this.deps.generations.failInterrupted();
  }

  /** Waits for running generations (graceful shutdown), stopping them after `graceMs`. */
  async drain(graceMs: number): Promise<void> {
    const timer = setTimeout(() => {
      for (const id of this.running.keys()) this.deps.stops.stop(id);
    }, graceMs);
    await Promise.allSettled([...this.running.values()].map((answer) => answer.done));
    clearTimeout(timer);
  }

  /** Sends the request for an answer: the history, fitted into the model's window. */
  private async request(
    provider: AiProvider,
    model: string,
    settings: ConversationSettings,
    history: Message[],
    signal: AbortSignal,
  ): Promise<Upstream> {
    // Stopped while its history was read (or the conversation deleted): never ask upstream.
    if (signal.aborted) return stoppedBeforeItsTurn();
    const { contextWindow } = await provider.capabilities(model);
    const fitted = await fitContext({
      provider,
      model,
      contextWindow,
      systemPrompt: settings.systemPrompt,
      history: toChat(history),
      maxOutputTokens: this.deps.policy.maxOutputTokensFor(settings),
    });
    const request: GenerationRequest = {
      messages: fitted.messages,
      model,
      temperature: settings.temperature,
      maxOutputTokens: fitted.maxOutputTokens,
    };
    return {
      fitted,
      question: history.at(-1)?.content,
      chunks: signal.aborted
        ? stoppedBeforeItsTurn().chunks
        : readEagerly(provider.stream(request, signal)),
    };
  }
}

/** An answer stopped before its turn came: it ends at once, stopped, with no text. */
function stoppedBeforeItsTurn(): Upstream {
  return {
    fitted: { messages: [], includedIds: [], dropped: 0, maxOutputTokens: 0 },
    question: undefined,
    chunks: ChunkQueue.of<StreamChunk>({
      type: 'done',
      usage: { promptTokens: 0, completionTokens: 0, totalTokens: 0 },
      finishReason: 'stopped',
    }),
  };
}
