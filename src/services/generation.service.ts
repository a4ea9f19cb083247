// AI answers (SPEC §7): start one for a user message when its user's turn comes (fairly shared,
// capped per user: SPEC §8), follow or stop it for any participant (and stop it when its
// conversation is deleted). Two ways to run one: in this process (the embedded default:
// answer-runner.ts right here, the request sent before the rows are written), or, with Redis,
// queued for a worker (answer-jobs.ts) after the rows are written.
import type { GenerationListener, GenerationLog } from '../ai/generation-log.js';
import { publishStart } from '../ai/generation-runner.js';
import type { AiProvider } from '../ai/provider.js';
import type { FairScheduler, Ticket } from '../ai/scheduler.js';
import type { StopSignals } from '../ai/stop-signals.js';
import type { ConversationSettings, Generation } from '../db/schema.js';
import type { EventBus } from '../events/event-bus.js';
import { AppError, conflict, notFound, rateLimited } from '../errors.js';
import type { Metrics } from '../infra/metrics.js';
import type { GenerationQueue } from '../queue/generation-queue.js';
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
import type { AnswerCap } from './answer-cap.js';
import { requestAnswer, stoppedBeforeItsTurn } from './answer-request.js';
import { AnswerRunner, type Upstream } from './answer-runner.js';
import type { Principal } from './session.service.js';
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
 * One answer's place in its user's cap, reserved before anything is stored and released when the
 * answer does not start after all (or ends). In-process a scheduler ticket; queued, a place in
 * the cluster-wide cap whose id becomes the answer's generation id.
 */
export type AnswerPlace =
  | { kind: 'inline'; userId: string; ticket: Ticket; release(): void }
  | { kind: 'queued'; userId: string; id: string; rank: number; release(): void };

/**
 * Follows a generation's events (those after the resume point, then each new one, exactly once);
 * `lost` is called when the follower may no longer see it. Resolves, after the replay, with the
 * function that stops following.
 */
export type Follow = (listener: GenerationListener, lost: () => void) => Promise<() => void>;

/** How long a user over the cap is told to wait before trying again (answers take seconds). */
const CAP_RETRY_SECONDS = 5;

/** With Redis: the queue, the cluster-wide cap and how long an unclaimed answer may wait. */
export interface QueueMode {
  jobs: GenerationQueue;
  cap: AnswerCap;
  /** An answer no worker has taken this long is failed (its lease, see lease-sweeper.ts). */
  queueLeaseMs: number;
}

export class GenerationService {
  private readonly runner: AnswerRunner;
  /** Answers started here and not yet finished (in-process: waiting for their turn or running). */
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
      /** Set with Redis: answers are queued for workers instead of run here. */
      queue?: QueueMode | undefined;
    },
  ) {
    this.runner = new AnswerRunner(deps);
    // A deleted conversation's answers stop at once, wherever they run: nobody may read them
    // any more (SPEC §8).
    deps.events.subscribe('conversation.deleted', async ({ conversationId }) => {
      const ids = new Set<string>();
      for (const [id, answer] of this.running)
        if (answer.conversationId === conversationId) ids.add(id);
      if (deps.queue)
        for (const id of await deps.generations.runningIn(conversationId)) ids.add(id);
      await Promise.all([...ids].map((id) => deps.stops.stop(id)));
    });
  }

  /** The runner of answers, for the workers of the queue (answer-jobs.ts). */
  get answerRunner(): AnswerRunner {
    return this.runner;
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
  async tryReserve(userId: string): Promise<AnswerPlace | undefined> {
    const { queue, scheduler } = this.deps;
    if (queue) {
      const id = createId();
      const place = await queue.cap.reserve(userId, id);
      if (!place) return undefined;
      return {
        kind: 'queued',
        userId,
        id,
        rank: place.rank,
        release: () => void queue.cap.release(userId, id).catch(() => undefined),
      };
    }
    const ticket = scheduler.reserve(userId);
    return ticket && { kind: 'inline', userId, ticket, release: () => ticket.release() };
  }

  /** Like tryReserve, for a request that must have an answer: 409 when answers are off, 429 over the cap. */
  async reserveOrRefuse(
    userId: string,
    settings: ConversationSettings | null | undefined,
  ): Promise<AnswerPlace> {
    if (!this.enabled) throw conflict('AI answers are turned off on this server');
    if (settings?.aiEnabled === false)
      throw conflict('AI answers are turned off in this conversation');
    const place = await this.tryReserve(userId);
    if (!place) throw this.tooManyAnswers();
    return place;
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
   * Starts the AI's answer to a user message, holding the place the caller reserved: the
   * assistant message exists (SENDING) and the start event is published before this returns;
   * the answer streams in the background (or on a worker) once its turn comes. `replaces`: a
   * regenerated answer is an alternative of that one.
   */
  async answer(
    place: AnswerPlace,
    question: Question,
    settings: ConversationSettings | null,
    replaces?: string,
  ): Promise<GenerationRef | undefined> {
    const { provider } = this.deps;
    if (!provider) {
      place.release();
      throw conflict('AI answers are turned off on this server');
    }
    return place.kind === 'queued'
      ? this.answerQueued(provider, place, question, settings, replaces)
      : this.answerHere(provider, place.ticket, question, settings, replaces);
  }

  /** In this process: the request goes upstream first, the rows are written meanwhile. */
  private async answerHere(
    provider: AiProvider,
    ticket: Ticket,
    question: Question,
    settings: ConversationSettings | null,
    replaces?: string,
  ): Promise<GenerationRef | undefined> {
    const startedAt = Date.now(); // time to first token counts from here
    const generationId = createId();
    const model = this.deps.policy.modelFor(settings);
    const stop = this.deps.stops.register(generationId);
    // Known from now on, so deleting the conversation stops it even before its rows exist.
    const conversationId = question.conversationId;
    this.running.set(generationId, { conversationId, done: Promise.resolve() });
    const ask = async (signal: AbortSignal) =>
      requestAnswer(
        provider,
        this.deps.policy,
        model,
        settings ?? {},
        await this.deps.messages.history(question),
        signal,
      );
    let upstream: Promise<Upstream>;
    if (ticket.startNow()) {
      // The request goes upstream before the answer's rows are written: an upstream takes tens
      // of milliseconds to its first token, and the writes fit into that wait instead of adding
      // to the time to first token (bench/ttft.ts). Only the history is read first (PGlite
      // serves one statement at a time). Failures surface where `run` awaits.
      const history = this.deps.messages.history(question);
      upstream = history.then((rows) =>
        requestAnswer(provider, this.deps.policy, model, settings ?? {}, rows, stop.signal),
      );
      upstream.catch(() => undefined);
      await history.catch(() => undefined);
      // One turn of the event loop lets the HTTP client put the request on the wire before the
      // writes below (PGlite runs them on this thread).
      await new Promise((resolve) => setImmediate(resolve));
    } else {
      // Its turn comes later: read the history then, so the answer sees what was said meanwhile.
      upstream = ticket.started(stop.signal).then(
        () => ask(stop.signal),
        () => stoppedBeforeItsTurn(),
      );
      upstream.catch(() => undefined);
    }
    const release = () => {
      stop.release();
      ticket.release();
    };
    let generation: Generation;
    try {
      generation = await this.startRows(
        provider,
        generationId,
        ticket.userId,
        question,
        model,
        replaces,
      );
    } catch (error) {
      // Closes the upstream request already sent (the local abort happens whatever Redis says).
      void this.deps.stops.stop(generationId).catch(() => undefined);
      release();
      this.running.delete(generationId);
      return this.notStarted(error, conversationId);
    }
    const done = this.runner
      .run(provider, generation, upstream, startedAt)
      .finally(release)
      .finally(() => this.running.delete(generation.id));
    this.running.set(generation.id, { conversationId, done });
    return { id: generation.id, messageId: generation.messageId };
  }

  /** With Redis: the rows are written, then the job is queued for a worker. */
  private async answerQueued(
    provider: AiProvider,
    place: Extract<AnswerPlace, { kind: 'queued' }>,
    question: Question,
    settings: ConversationSettings | null,
    replaces?: string,
  ): Promise<GenerationRef | undefined> {
    const startedAt = Date.now();
    const model = this.deps.policy.modelFor(settings);
    const queue = this.deps.queue!;
    let generation: Generation;
    try {
      generation = await this.startRows(
        provider,
        place.id,
        place.userId,
        question,
        model,
        replaces,
        queue,
      );
    } catch (error) {
      place.release();
      return this.notStarted(error, question.conversationId);
    }
    try {
      await queue.jobs.enqueue(
        {
          generationId: generation.id,
          conversationId: question.conversationId,
          messageId: generation.messageId,
          userId: place.userId,
          question: { id: question.id, createdAt: question.createdAt.toISOString() },
          model,
          settings: settings ?? {},
          startedAt,
        },
        place.rank,
      );
    } catch (error) {
      // The question stands; its answer ends at once, failed, and says why.
      this.deps.logger.error('Could not queue an AI answer', describeError(error));
      place.release();
      await this.runner.failed(provider, generation, error, 0);
    }
    return { id: generation.id, messageId: generation.messageId };
  }

  /** The answer's rows, then its announcement: message:new, the start event, every process told. */
  private async startRows(
    provider: AiProvider,
    generationId: string,
    userId: string,
    question: Question,
    model: string,
    replaces: string | undefined,
    queue?: QueueMode,
  ): Promise<Generation> {
    const { generation, message } = await this.deps.generations.start({
      id: generationId,
      conversationId: question.conversationId,
      userMessageId: question.id,
      requestedBy: userId,
      provider: provider.name,
      model,
      replaces,
      queueLeaseMs: queue?.queueLeaseMs,
    });
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
    return generation;
  }

  private notStarted(error: unknown, conversationId: string): undefined {
    if (error instanceof ConversationGone) throw notFound('Conversation');
    // The question is stored and was announced: the send stands, without an answer.
    this.deps.logger.error('Could not start an AI answer', {
      conversationId,
      ...describeError(error),
    });
    return undefined;
  }

  /** Any participant may stop a generation; false when it was not running. */
  async stop(
    principal: Principal,
    generationId: string,
  ): Promise<{ generationId: string; stopped: boolean }> {
    const generation = await this.access(principal, generationId);
    if (generation.status !== 'RUNNING') return { generationId, stopped: false };
    await this.deps.stops.stop(generationId);
    return { generationId, stopped: true };
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

  /** At start (embedded only): generations a crashed process left running are failed. */
  async recoverInterrupted(): Promise<number> {
    return this.deps.generations.failInterrupted();
  }

  /** Waits for the answers running here (graceful shutdown), stopping them after `graceMs`. */
  async drain(graceMs: number): Promise<void> {
    const timer = setTimeout(() => {
      for (const id of this.running.keys()) void this.deps.stops.stop(id).catch(() => undefined);
    }, graceMs);
    await Promise.allSettled([...this.running.values()].map((answer) => answer.done));
    clearTimeout(timer);
  }
}
