// Conversations: creation with their first participants, the caller's access in one query,
// and the caller's list ordered by activity with unread counts and a last-message preview.
import { and, asc, desc, eq, gt, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import {
  conversationParticipants,
  conversations,
  messages,
  type Conversation,
  type ConversationSettings,
  type ParticipantRole,
} from '../db/schema.js';

/** A conversation as one participant sees it. */
export interface ConversationAccess {
  conversation: Conversation;
  /** Null when the caller is not a participant. */
  role: ParticipantRole | null;
  lastReadAt: Date | null;
}

export interface ConversationListRow {
  conversation: Conversation;
  role: ParticipantRole;
  unreadCount: number;
  lastMessage: {
    id: string;
    userId: string | null;
    role: 'USER' | 'ASSISTANT' | 'SYSTEM';
    type: string;
    content: string;
    createdAt: Date;
  } | null;
  /** Sort key: last message time, or creation time for a conversation without messages. */
  activityAt: Date;
}

export interface ListPosition {
  activityAt: Date;
  id: string;
}

export const PREVIEW_CHARS = 200;

export class ConversationRepository {
  constructor(private readonly db: Db) {}

  async create(
    values: {
      title?: string | undefined;
      description?: string | undefined;
      settings: ConversationSettings;
    },
    ownerId: string,
    memberIds: readonly string[],
  ): Promise<Conversation> {
    return this.db.transaction(async (tx) => {
      const [conversation] = await tx
        .insert(conversations)
        .values({
          ...(values.title === undefined ? {} : { title: values.title }),
          description: values.description ?? null,
          settings: values.settings,
        })
        .returning();
      if (!conversation) throw new Error('INSERT … RETURNING returned no row');
      await tx.insert(conversationParticipants).values([
        { conversationId: conversation.id, userId: ownerId, role: 'OWNER' as const },
        ...memberIds.map((userId) => ({
          conversationId: conversation.id,
          userId,
          role: 'MEMBER' as const,
        })),
      ]);
      return conversation;
    });
  }

  /** The live (not deleted) conversation and the caller's place in it, in one query. */
  async getAccess(conversationId: string, userId: string): Promise<ConversationAccess | undefined> {
    const [row] = await this.db
      .select({
        conversation: conversations,
        role: conversationParticipants.role,
        lastReadAt: conversationParticipants.lastReadAt,
      })
      .from(conversations)
      .leftJoin(
        conversationParticipants,
        and(
          eq(conversationParticipants.conversationId, conversations.id),
          eq(conversationParticipants.userId, userId),
        ),
      )
      .where(and(eq(conversations.id, conversationId), eq(conversations.isDeleted, false)))
      .limit(1);
    return row;
  }

  async listForUser(
    userId: string,
    options: { archived: boolean; limit: number; after?: ListPosition | undefined },
  ): Promise<ConversationListRow[]> {
    const p = conversationParticipants;
    const c = conversations;
    const activityAt = sql<Date>`coalesce(${c.lastMessageAt}, ${c.createdAt})`;
    // Unread: other people's (and the AI's) live messages after the caller's read mark; the
    // (conversation_id, created_at, id) index makes it a range count.
    const unread = sql<number>`(
      select count(*)::int from ${messages} m
      where m.conversation_id = ${c.id} and m.created_at > ${p.lastReadAt}
        and m.is_deleted = false and m.user_id is distinct from ${p.userId})`;
    const lastMessage = sql<string | null>`(
      select json_build_object('id', m.id, 'userId', m.user_id, 'role', m.role, 'type', m.type,
               'content', left(m.content, ${PREVIEW_CHARS}), 'createdAt', m.created_at)::text
      from ${messages} m
      where m.conversation_id = ${c.id} and m.is_deleted = false
      order by m.created_at desc, m.id desc limit 1)`;
    const conditions: SQL[] = [
      eq(p.userId, userId),
      eq(c.isDeleted, false),
      eq(c.isArchived, options.archived),
    ];
    if (options.after) {
      conditions.push(
        sql`(${activityAt}, ${c.id}) < (${options.after.activityAt.toISOString()}::timestamptz, ${options.after.id})`,
      );
    }
    const rows = await this.db
      .select({ conversation: c, role: p.role, unread, lastMessage, activityAt })
      .from(p)
      .innerJoin(c, eq(c.id, p.conversationId))
      .where(and(...conditions))
      .orderBy(desc(activityAt), desc(c.id))
      .limit(options.limit);
    return rows.map((row) => ({
      conversation: row.conversation,
      role: row.role,
      unreadCount: Number(row.unread),
      lastMessage: parsePreview(row.lastMessage),
      activityAt: new Date(row.activityAt),
    }));
  }

  /**
   * A page of every live conversation the user is in, archived or not, with their place in it,
   * by id (a stable order that no new message moves): the export reads them this way.
   */
  async pageOfMember(
    userId: string,
    limit: number,
    afterId?: string,
  ): Promise<Array<ConversationAccess & { role: ParticipantRole; joinedAt: Date }>> {
    const p = conversationParticipants;
    return this.db
      .select({
        conversation: conversations,
        role: p.role,
        joinedAt: p.joinedAt,
        lastReadAt: p.lastReadAt,
      })
      .from(p)
      .innerJoin(conversations, eq(conversations.id, p.conversationId))
      .where(
        and(
          eq(p.userId, userId),
          eq(conversations.isDeleted, false),
          afterId === undefined ? undefined : gt(conversations.id, afterId),
        ),
      )
      .orderBy(asc(conversations.id))
      .limit(limit);
  }

  async update(
    id: string,
    patch: Partial<Pick<Conversation, 'title' | 'description' | 'settings' | 'isArchived'>>,
  ): Promise<Conversation | undefined> {
    const [row] = await this.db
      .update(conversations)
      .set(patch)
      .where(and(eq(conversations.id, id), eq(conversations.isDeleted, false)))
      .returning();
    return row;
  }

  async getById(id: string): Promise<Conversation | undefined> {
    const [row] = await this.db
      .select()
      .from(conversations)
      .where(and(eq(conversations.id, id), eq(conversations.isDeleted, false)))
      .limit(1);
    return row;
  }

  /** Renames only if the title is still `expected` (a person's rename is never overwritten). */
  async renameIfTitled(id: string, expected: string, title: string): Promise<boolean> {
    const rows = await this.db
      .update(conversations)
      .set({ title })
      .where(and(eq(conversations.id, id), eq(conversations.title, expected)))
      .returning({ id: conversations.id });
    return rows.length > 0;
  }
}

function parsePreview(json: string | null): ConversationListRow['lastMessage'] {
  if (!json) return null;
  const raw = JSON.parse(json) as Omit<
    NonNullable<ConversationListRow['lastMessage']>,
    'createdAt'
  > & {
    createdAt: string;
  };
  return { ...raw, createdAt: new Date(raw.createdAt) };
}
