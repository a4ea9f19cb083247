// Generations and the assistant messages they fill: created together (a regenerated answer as a
// version of the one it replaces), saved as they grow, finished together.
import { and, eq } from 'drizzle-orm';
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
import { lockVersionGroup, supersedeVersions } from './message-versions.js';
import { conversationClock } from './message-clock.js';

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
  }): Promise<{ generation: Generation; message: Message }> {
    const { replaces, ...generationValues } = values;
    // Locks are taken parent before child and the conversation's row last, in the order every
    // other writer takes them (a reply, an edit-and-resend), so they queue instead of deadlocking.
    return retryOnConflict(() => this.startOnce(generationValues, replaces));
  }

  private async startOnce(
    values: Omit<Parameters<GenerationRepository['start']>[0], 'replaces'>,
    replaces: string | undefined,
  ): Promise<{ generation: Generation; message: Message }> {
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
          alternativeOf: root,
          superseded: question.superseded,
          createdAt: live.at,
        })
        .returning(messageColumns);
      if (!message) throw new Error('INSERT … RETURNING returned no row');
      const [generation] = await tx
        .insert(generations)
        .values({ ...values, messageId: message.id })
        .returning();
      if (!generation) throw new Error('INSERT … RETURNING returned no row');
      return { generation, message };
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

  async saveProgress(messageId: string, content: string): Promise<void> {
    await this.db.update(messages).set({ content }).where(eq(messages.id, messageId));
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
  ): Promise<Message> {
    return this.db.transaction(async (tx) => {
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
      await tx
        .update(generations)
        .set({
          status: result.stopped ? 'STOPPED' : 'COMPLETED',
          finishReason: result.finishReason,
          usage: result.usage,
          endedAt: new Date(),
        })
        .where(eq(generations.id, generation.id));
      if (!message) throw new Error('the assistant message vanished');
      return message;
    });
  }

  /** Failed: the partial text is kept, the message is FAILED. */
  async fail(generation: Generation, content: string, error: string): Promise<Message | undefined> {
    return this.db.transaction(async (tx) => {
      const [message] = await tx
        .update(messages)
        .set({ content, status: 'FAILED', finishReason: 'error' })
        .where(eq(messages.id, generation.messageId))
        .returning(messageColumns);
      await tx
        .update(generations)
        .set({ status: 'FAILED', error, endedAt: new Date() })
        .where(eq(generations.id, generation.id));
      return message;
    });
  }

  /** At start: whatever a crashed process left running is failed, never SENDING forever. */
  async failInterrupted(): Promise<number> {
    const interrupted = await this.db
      .update(generations)
      .set({
        status: 'FAILED',
        error: 'Interrupted: the server stopped while answering',
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
