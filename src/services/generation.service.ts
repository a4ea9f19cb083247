// AI answers (SPEC §7): start one for a user message when its user's turn comes (fairly shared,
// capped per user: SPEC §8), follow or stop it for any participant (and stop it when its
// conversation is deleted). Two ways to run one: in this process (the embedded default:
// answer-runner.ts right here, the request sent before the rows are written), or, with Redis,
// queued for a worker (answer-jobs.ts) after the rows are written.
import type { GenerationListener } from '../ai/generation-log.js';
import type { ConversationSettings, Generation } from '../db/schema.js';
import { AppError, conflict, rateLimited } from '../errors.js';
import { createId } from '../utils/ids.js';
import { requireRole } from './access.js';
import { watchAccess } from './access-watch.js';
import { AnswerRunner } from './answer-runner.js';
import { AnswerStarter } from './answer-starter.js';
import type {
  AnswerPlace,
  GenerationDeps,
  GenerationRef,
  Question,
  QueueMode,
} from './generation-types.js';
import type { Principal } from './session.service.js';

/**
 * Follows a generation's events (those after the resume point, then each new one, exactly once);
 * `lost` is called when the follower may no longer see it. Resolves, after the replay, with the
 * function that stops following.
 */
export type Follow = (listener: GenerationListener, lost: () => void) => Promise<() => void>;

/** How long a user over the cap is told to wait before trying again (answers take seconds). */
const CAP_RETRY_SECONDS = 5;

export type { AnswerPlace, GenerationDeps, GenerationRef, Question, QueueMode };

export class GenerationService {
  private readonly runner: AnswerRunner;
  private readonly starter: AnswerStarter;

  constructor(private readonly deps: GenerationDeps) {
    this.runner = new AnswerRunner(deps);
    this.starter = new AnswerStarter(deps, this.runner);
    // A deleted conversation's answers stop at once, wherever they run: nobody may read them
    // any more (SPEC §8).
    deps.events.subscribe('conversation.deleted', async ({ conversationId }) => {
      const ids = new Set<string>(this.starter.runningIn(conversationId));
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
      ? this.starter.queued(provider, place, question, settings, replaces)
      : this.starter.here(provider, place.ticket, question, settings, replaces);
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
      let following: (() => void) | undefined;
      try {
        following = await this.deps.log.follow(generationId, afterSeq, (event) => {
          if (!ended) listener(event);
        });
      } catch (error) {
        unwatch();
        throw error;
      }
      if (ended) following?.();
      else if (!following) {
        // Gone from the log meanwhile (expired, or Redis lost it): nothing will come.
        end();
        return () => undefined;
      } else unfollow = following;
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
  drain(graceMs: number): Promise<void> {
    return this.starter.drain(graceMs);
  }
}
