// Emoji reactions: idempotent add, remove, and per-message summaries for message views.
import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { messageReactions, type MessageReaction } from '../db/schema.js';

export interface ReactionSummaryRow {
  messageId: string;
  emoji: string;
  count: number;
  userIds: string[];
}

const r = messageReactions;

export class ReactionRepository {
  constructor(private readonly db: Db) {}

  /** Adds the reaction unless it exists; `created` says whether this call added it. */
  async add(
    messageId: string,
    userId: string,
    emoji: string,
  ): Promise<{ reaction: MessageReaction; created: boolean }> {
    const [inserted] = await this.db
      .insert(r)
      .values({ messageId, userId, emoji })
      .onConflictDoNothing({ target: [r.messageId, r.userId, r.emoji] })
      .returning();
    if (inserted) return { reaction: inserted, created: true };
    const [existing] = await this.db
      .select()
      .from(r)
      .where(and(eq(r.messageId, messageId), eq(r.userId, userId), eq(r.emoji, emoji)))
      .limit(1);
    if (!existing) throw new Error('reaction vanished between insert and select');
    return { reaction: existing, created: false };
  }

  async remove(messageId: string, userId: string, emoji: string): Promise<boolean> {
    const rows = await this.db
      .delete(r)
      .where(and(eq(r.messageId, messageId), eq(r.userId, userId), eq(r.emoji, emoji)))
      .returning({ id: r.id });
    return rows.length > 0;
  }

  /** Per message and emoji: how many, and who (in the order they reacted). */
  async summaries(messageIds: readonly string[]): Promise<ReactionSummaryRow[]> {
    if (messageIds.length === 0) return [];
    const rows = await this.db
      .select({
        messageId: r.messageId,
        emoji: r.emoji,
        count: sql<number>`count(*)::int`,
        userIds: sql<string[]>`array_agg(${r.userId} order by ${r.createdAt}, ${r.id})`,
      })
      .from(r)
      .where(inArray(r.messageId, [...messageIds]))
      .groupBy(r.messageId, r.emoji)
      .orderBy(asc(sql`min(${r.createdAt})`), asc(r.emoji));
    return rows.map(({ messageId, emoji, count, userIds }) => ({
      messageId,
      emoji,
      count: Number(count),
      userIds,
    }));
  }
}
