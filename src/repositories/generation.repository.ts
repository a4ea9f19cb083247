// Generations and the assistant messages they fill: created together (a regenerated answer as a
// version of the one it replaces), saved as they grow, finished together.
import { and, eq, isNull, lt, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { retryOnConflict } from '../db/errors.js';
import {
  conversationParticipants,
  conversations,
  generations,
  messages,
  type Generation,
  type Message,
  type MessageUsage,
  type ParticipantRole,
} from '../db/schema.js';
import { createId } from '../utils/ids.js';
import { messageColumns } from './message-columns.js';
import {
  lockVersionGroup,
  summarizeVersions,
  supersedeVersions,
  type VersionSummary,
} from './message-versions.js';
import { conversationClock } from './message-clock.js';

/** What an answer cut off by a stopped process says. */
export const INTERRUPTED = 'Interrupted: the server stopped while answering';

export interface GenerationAccess {
  generation: Generation;
  role: ParticipantRole | null;
}

/** The conversation (or the question) was deleted before the answer could start. */
export class ConversationGone extends Error {
  constructor() {
    super('The conversation was deleted before the answer started');
    this.name = 'ConversationGone';
  }
}

export interface StartedAnswer {
  generation: Generation;
  message: Message;
  /** A regenerated answer's place among its versions (the newest); null for a first answer. */
  versions: VersionSummary | null;
}

export class GenerationRepository {
  constructor(private readonly db: Db) {}

  /**
   * The empty assistant message (SENDING) and its generation (RUNNING), in one transaction;
   * `id` is the generation's, chosen by the caller (its stop signal exists before the rows).
   * The answer replies to the question (`parentId`), sorts after it even when both were written
   * in one millisecond, and is on the active branch when the question is (the question's row is
   * read FOR SHARE, so an edit-and-resend replacing it at the same moment is waited for).
   * `replaces`: a regenerated answer is an alternative of that one, which leaves the branch.
   */
  async start(values: {
    id: string;
    conversationId: string;
    userMessageId: string;
    requestedBy: string | null;
    provider: string;
    model: string;
    replaces?: string | undefined;
    /** Scale-out: the queue's lease, ending when no worker has taken the answer this long. */
    queueLeaseMs?: number | undefined;
  }): Promise<StartedAnswer> {
    const { replaces, queueLeaseMs, ...rest } = values;
    const generationValues = {
      ...rest,
      ...(queueLeaseMs ? { leaseExpiresAt: new Date(Date.now() + queueLeaseMs) } : {}),
    };
    // Locks are taken parent before child and the conversation's row last, in the order every
    // other writer takes them (a reply, an edit-and-resend), so they queue instead of deadlocking.
    return retryOnConflict(() => this.startOnce(generationValues, replaces));
  }

  private async startOnce(
    values: Omit<Parameters<GenerationRepository['start']>[0], 'replaces' | 'queueLeaseMs'> & {
      leaseExpiresAt?: Date;
    },
    replaces: string | undefined,
  ): Promise<StartedAnswer> {
    return this.db.transaction(async (tx) => {
      const [question] = await tx
        .select({ createdAt: messages.createdAt, superseded: messages.superseded })
        .from(messages)
        .where(eq(messages.id, values.userMessageId))
        .for('share');
      if (!question) throw new ConversationGone();
      const root = replaces ? await lockVersionGroup(tx, replaces) : null;
      if (root) await supersedeVersions(tx, root);
      // The conversation's row gives the answer its time (after the question, and after every
      // message written before it: conversationClock); a conversation deleted meanwhile gets no
      // answer. Its lock is the last this transaction takes: the inserts below only read it.
      const [live] = await tx
        .update(conversations)
        .set({ lastMessageAt: conversationClock(question.createdAt) })
        .where(and(eq(conversations.id, values.conversationId), eq(conversations.isDeleted, false)))
        .returning({ at: conversations.lastMessageAt });
      if (!live?.at) throw new ConversationGone();
      const [message] = await tx
        .insert(messages)
        .values({
          id: createId(),
          conversationId: values.conversationId,
          userId: null,
          content: '',
          role: 'ASSISTANT',
          type: 'MARKDOWN',
          status: 'SENDING',
          parentId: values.userMessageId,
          model: values.model,
          // Every view of the answer names its generation, so a client that reloads can resume it.
          metadata: { generationId: values.id },
          alternativeOf: root,
          superseded: question.superseded,
          // A new version is the chosen one of its group (the others were unchosen above).
          chosen: root ? true : null,
          createdAt: live.at,
        })
        .returning(messageColumns);
      if (!message) throw new Error('INSERT … RETURNING returned no row');
      const [generation] = await tx
        .insert(generations)
        .values({ ...values, messageId: message.id })
        .returning();
      if (!generation) throw new Error('INSERT … RETURNING returned no row');
      const versions = root
        ? ((await summarizeVersions(tx, [message])).get(message.id) ?? null)
        : null;
      return { generation, message, versions };
    });
  }

  /** A generation and the caller's role in its (live) conversation. */
  async getAccess(generationId: string, userId: string): Promise<GenerationAccess | undefined> {
    const [row] = await this.db
      .select({ generation: generations, role: conversationParticipants.role })
      .from(generations)
      .innerJoin(
        conversations,
        and(eq(conversations.id, generations.conversationId), eq(conversations.isDeleted, false)),
      )
      .leftJoin(
        conversationParticipants,
        and(
          eq(conversationParticipants.conversationId, generations.conversationId),
          eq(conversationParticipants.userId, userId),
        ),
      )
      .where(eq(generations.id, generationId))
      .limit(1);
    return row;
  }

  /** The text so far of an answer still being written (one that ended elsewhere keeps its own). */
  async saveProgress(messageId: string, content: string): Promise<void> {
    await this.db
      .update(messages)
      .set({ content })
      .where(and(eq(messages.id, messageId), eq(messages.status, 'SENDING')));
  }

  async markFirstToken(generationId: string, at: Date): Promise<void> {
    await this.db
      .update(generations)
      .set({ firstTokenAt: at })
      .where(eq(generations.id, generationId));
  }

  /** Completed or stopped: the message holds the whole (or partial) text and is SENT. */
  async finish(
    generation: Generation,
    result: {
      content: string;
      model: string;
      usage: MessageUsage;
      finishReason: string;
      stopped: boolean;
      metadata?: Record<string, unknown>;
    },
  ): Promise<Message | undefined> {
    return this.db.transaction(async (tx) => {
      // Only a running generation ends here: one another process failed meanwhile (its lease
      // expired) stays failed, and the caller then announces nothing.
      const [ended] = await tx
        .update(generations)
        .set({
          status: result.stopped ? 'STOPPED' : 'COMPLETED',
          finishReason: result.finishReason,
          usage: result.usage,
          endedAt: new Date(),
        })
        .where(and(eq(generations.id, generation.id), eq(generations.status, 'RUNNING')))
        .returning({ id: generations.id });
      if (!ended) return undefined;
      const [message] = await tx
        .update(messages)
        .set({
          content: result.content,
          status: 'SENT',
          model: result.model,
          usage: result.usage,
          finishReason: result.finishReason,
          ...(result.metadata ? { metadata: result.metadata } : {}),
        })
        .where(eq(messages.id, generation.messageId))
        .returning(messageColumns);
      if (!message) throw new Error('the assistant message vanished');
      return message;
    });
  }

  /** Failed: the partial text is kept, the message is FAILED; undefined when it had ended already. */
  async fail(generation: Generation, content: string, error: string): Promise<Message | undefined> {
    return this.db.transaction(async (tx) => {
      const [ended] = await tx
        .update(generations)
        .set({ status: 'FAILED', error, endedAt: new Date() })
        .where(and(eq(generations.id, generation.id), eq(generations.status, 'RUNNING')))
        .returning({ id: generations.id });
      if (!ended) return undefined;
      const [message] = await tx
        .update(messages)
        .set({ content, status: 'FAILED', finishReason: 'error' })
        .where(eq(messages.id, generation.messageId))
        .returning(messageColumns);
      return message;
    });
  }

  /**
   * A worker takes a running answer: its lease is free (the queue's, or one whose holder stopped
   * renewing it). Undefined when the answer ended or another live process holds it.
   */
  async claim(
    generationId: string,
    owner: string,
    leaseMs: number,
  ): Promise<Generation | undefined> {
    const [row] = await this.db
      .update(generations)
      .set({
        leaseOwner: owner,
        leaseExpiresAt: sql`now() + ${`${leaseMs} milliseconds`}::interval`,
      })
      .where(
        and(
          eq(generations.id, generationId),
          eq(generations.status, 'RUNNING'),
          or(isNull(generations.leaseOwner), lt(generations.leaseExpiresAt, sql`now()`)),
        ),
      )
      .returning();
    return row;
  }

  /** Ids of a conversation's running answers (to stop them all when it is deleted). */
  async runningIn(conversationId: string): Promise<string[]> {
    const rows = await this.db
      .select({ id: generations.id })
      .from(generations)
      .where(
        and(eq(generations.conversationId, conversationId), eq(generations.status, 'RUNNING')),
      );
    return rows.map((row) => row.id);
  }

  /**
   * The lease holder's heartbeat for the answers it runs; returns the ids still held (one missing
   * was failed by another process after the lease lapsed: its runner must stop).
   */
  async renewLeases(owner: string, generationIds: string[], leaseMs: number): Promise<string[]> {
    if (generationIds.length === 0) return [];
    const renewed = await this.db
      .update(generations)
      .set({ leaseExpiresAt: sql`now() + ${`${leaseMs} milliseconds`}::interval` })
      .where(
        and(
          eq(generations.leaseOwner, owner),
          eq(generations.status, 'RUNNING'),
          sql`${generations.id} = any(${sql.param(generationIds)}::text[])`,
        ),
      )
      .returning({ id: generations.id });
    return renewed.map((row) => row.id);
  }

  /**
   * Fails the running answers whose lease expired (their process was killed, or no worker took
   * them), at most `limit` at a time; each is returned to exactly one caller (SKIP LOCKED), which
   * tells their followers. The text written so far is kept.
   */
  async failExpired(limit = 100): Promise<Generation[]> {
    return this.db.transaction(async (tx) => {
      const expired = tx
        .select({ id: generations.id })
        .from(generations)
        .where(and(eq(generations.status, 'RUNNING'), lt(generations.leaseExpiresAt, sql`now()`)))
        .orderBy(generations.leaseExpiresAt)
        .limit(limit)
        .for('update', { skipLocked: true });
      const failed = await tx
        .update(generations)
        .set({ status: 'FAILED', error: INTERRUPTED, endedAt: new Date() })
        .where(sql`${generations.id} in (${expired})`)
        .returning();
      if (failed.length) {
        await tx
          .update(messages)
          .set({ status: 'FAILED', finishReason: 'error' })
          .where(
            and(
              sql`${messages.id} = any(${sql.param(failed.map((g) => g.messageId))}::text[])`,
              eq(messages.status, 'SENDING'),
            ),
          );
      }
      return failed;
    });
  }

  /** At start: whatever a crashed process left running is failed, never SENDING forever. */
  async failInterrupted(): Promise<number> {
    const interrupted = await this.db
      .update(generations)
      .set({
        status: 'FAILED',
        error: INTERRUPTED,
        endedAt: new Date(),
      })
      .where(eq(generations.status, 'RUNNING'))
      .returning({ messageId: generations.messageId });
    await this.db
      .update(messages)
      .set({ status: 'FAILED', finishReason: 'error' })
      .where(and(eq(messages.role, 'ASSISTANT'), eq(messages.status, 'SENDING')));
    return interrupted.length;
  }
}
