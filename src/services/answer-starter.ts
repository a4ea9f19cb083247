// Starts answers, the two ways (generation.service.ts says when each): in this process, the
// request sent upstream before the answer's rows are written; or, with Redis, the rows written
// and the job queued for a worker. Either way the answer is announced the same way.
import { publishStart } from '../ai/generation-runner.js';
import { within } from '../utils/within.js';
import type { AiProvider } from '../ai/provider.js';
import type { Ticket } from '../ai/scheduler.js';
import type { ConversationSettings, Generation } from '../db/schema.js';
import { notFound } from '../errors.js';
import { ConversationGone } from '../repositories/generation.repository.js';
import { isVanishedReference } from '../utils/vanished-reference.js';
import { createId } from '../utils/ids.js';
import { describeError } from '../utils/logger.js';
import { requestAnswer, stoppedBeforeItsTurn } from './answer-request.js';
import type { AnswerRunner, Upstream } from './answer-runner.js';
import type {
  AnswerPlace,
  GenerationDeps,
  GenerationRef,
  Question,
  QueueMode,
} from './generation-types.js';
import { toMessageView } from './views.js';

/** How long a queued answer's start event may take to be stored before the answer fails. */
const START_STORED_MS = 3_000;

export class AnswerStarter {
  /** Answers started here and not yet finished (in-process: waiting for their turn or running). */
  private readonly running = new Map<string, { conversationId: string; done: Promise<void> }>();

  constructor(
    private readonly deps: GenerationDeps,
    private readonly runner: AnswerRunner,
  ) {}

  /** Ids of the answers of a conversation started in this process and still running. */
  runningIn(conversationId: string): string[] {
    return [...this.running]
      .filter(([, answer]) => answer.conversationId === conversationId)
      .map(([id]) => id);
  }

  /** In this process: the request goes upstream first, the rows are written meanwhile. */
  async here(
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
    const parts = { provider, policy: this.deps.policy, files: this.deps.files };
    const ask = async (signal: AbortSignal) =>
      requestAnswer(
        parts,
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
        requestAnswer(parts, model, settings ?? {}, rows, stop.signal),
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
  async queued(
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
      // Its start event must be stored before a worker appends after it (a follower needs the
      // whole stream from seq 0); a Redis that cannot take it now fails the answer instead.
      if (!(await within(this.deps.log.flushed(generation.id), START_STORED_MS)))
        throw new Error('The answer could not be announced: Redis did not store its start');
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
    const { generation, message, versions } = await this.deps.generations.start({
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
      message: toMessageView(message, undefined, [], [], versions),
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
    // The question is stored and was announced: the send stands, without an answer. Its asker's
    // account deleted meanwhile is a race, not a fault: nobody is left to answer.
    const level = isVanishedReference(error) ? 'warn' : 'error';
    this.deps.logger[level]('Could not start an AI answer', {
      conversationId,
      ...describeError(error),
    });
    return undefined;
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
