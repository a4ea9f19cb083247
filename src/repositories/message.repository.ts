// Messages: the send statement, access checks through a message, keyset pages, edits and
// soft deletes.
import { createId } from '../utils/ids.js';
import { and, asc, desc, eq, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { isUniqueViolation } from '../db/errors.js';
import {
  attachments,
  conversationParticipants,
  conversations,
  messages,
  users,
  type ConversationSettings,
  type Message,
  type ParticipantRole,
} from '../db/schema.js';
import { messageColumns } from './message-columns.js';

/** Where a message sits in its conversation's order: the keyset of every page query. */
export interface MessagePosition {
  createdAt: Date;
  id: string;
}

export interface MessageAccess {
  message: Message;
  /** The caller's role in the message's conversation, null when not a participant. */
  role: ParticipantRole | null;
}

/**
 * A user's message (the AI's answers arrive with the generation runner). Without parentId it
 * continues the conversation's newest message (the tree SPEC §7 branches on); an empty string
 * makes it a root.
 */
export interface NewMessage {
  conversationId: string;
  userId: string;
  content: string;
  role: Message['role'];
  type: Message['type'];
  parentId?: string | null | undefined;
  metadata?: Record<string, unknown> | null | undefined;
  clientMessageId?: string | null | undefined;
  status?: Message['status'];
}

export type SendResult =
  | {
      ok: true;
      message: Message;
      author: { id: string; username: string | null; avatar: string | null };
      settings: ConversationSettings | null;
    }
  | { ok: false; reason: 'not-a-participant' | 'duplicate-client-id' | 'attachments-unavailable' };

class AttachmentsUnavailable extends Error {}

export class MessageRepository {
  constructor(private readonly db: Db) {}

  /**
   * A user's message in one statement: it checks that the sender is a participant of the live
   * conversation, moves the conversation's lastMessageAt, inserts the message and returns it
   * with its author — one round trip, one parse, where the obvious way takes four. Nothing is
   * written when the sender may not post (`not-a-participant`; the caller finds out why).
   */
  async createAsParticipant(
    values: NewMessage,
    attachmentIds: readonly string[] = [],
  ): Promise<SendResult> {
    try {
      const row =
        attachmentIds.length === 0
          ? await this.sendStatement(this.db, values)
          : await this.db.transaction(async (tx) => {
              const inserted = await this.sendStatement(tx, values);
              if (inserted)
                await this.claimAttachments(tx, inserted.message.id, values.userId, attachmentIds);
              return inserted;
            });
      if (!row) return { ok: false, reason: 'not-a-participant' };
      return {
        ok: true,
        message: row.message,
        author: { id: values.userId, username: row.authorUsername, avatar: row.authorAvatar },
        settings: row.settings,
      };
    } catch (error) {
      if (error instanceof AttachmentsUnavailable)
        return { ok: false, reason: 'attachments-unavailable' };
      if (isUniqueViolation(error, 'messages_user_id_client_message_id_key')) {
        return { ok: false, reason: 'duplicate-client-id' };
      }
      throw error;
    }
  }

  private async sendStatement(db: Db, v: NewMessage) {
    const params = {
      id: createId(),
      conversationId: v.conversationId,
      userId: v.userId,
      content: v.content,
      role: v.role,
      type: v.type,
      status: v.status ?? 'SENT',
      parentId: v.parentId ?? null,
      metadata: v.metadata ? JSON.stringify(v.metadata) : null,
      clientMessageId: v.clientMessageId ?? null,
    };
    // Prepared once per database handle and named, so PostgreSQL parses and plans it once per
    // connection and Drizzle builds it once per process; a transaction needs its own.
    const statement =
      db === this.db
        ? (this.preparedSend ??= sendQuery(db).prepare('parley_send_message'))
        : sendQuery(db).prepare('parley_send_message');
    const [row] = await statement.execute(params);
    return row;
  }

  private preparedSend: ReturnType<ReturnType<typeof sendQuery>['prepare']> | undefined;

  private async claimAttachments(
    db: Db,
    messageId: string,
    userId: string,
    ids: readonly string[],
  ) {
    const claimed = await db
      .update(attachments)
      .set({ messageId })
      .where(
        and(
          sql`${attachments.id} = any(${sql.param([...ids])}::text[])`,
          eq(attachments.uploaderId, userId),
          sql`${attachments.messageId} is null`,
        ),
      )
      .returning({ id: attachments.id });
    if (claimed.length !== new Set(ids).size) throw new AttachmentsUnavailable();
  }

  /**
   * A message of a live conversation and the caller's role there, in one query; undefined when
   * the message does not exist or its conversation was deleted.
   */
  async getAccess(messageId: string, userId: string): Promise<MessageAccess | undefined> {
    const [row] = await this.db
      .select({ message: messageColumns, role: conversationParticipants.role })
      .from(messages)
      .innerJoin(
        conversations,
        and(eq(conversations.id, messages.conversationId), eq(conversations.isDeleted, false)),
      )
      .leftJoin(
        conversationParticipants,
        and(
          eq(conversationParticipants.conversationId, messages.conversationId),
          eq(conversationParticipants.userId, userId),
        ),
      )
      .where(eq(messages.id, messageId))
      .limit(1);
    return row;
  }

  async getByClientMessageId(
    userId: string,
    clientMessageId: string,
  ): Promise<Message | undefined> {
    const [row] = await this.db
      .select(messageColumns)
      .from(messages)
      .where(and(eq(messages.userId, userId), eq(messages.clientMessageId, clientMessageId)))
      .limit(1);
    return row;
  }

  /** The position of a message, only if it belongs to the conversation. */
  async position(conversationId: string, messageId: string): Promise<MessagePosition | undefined> {
    const [row] = await this.db
      .select({ createdAt: messages.createdAt, id: messages.id })
      .from(messages)
      .where(and(eq(messages.id, messageId), eq(messages.conversationId, conversationId)))
      .limit(1);
    return row;
  }

  /**
   * One page in conversation order (oldest first). `before`: the `limit` messages just before
   * that position; `after`: just after it; neither: the newest `limit`. Every variant is one
   * range scan of the (conversation_id, created_at, id) index, as fast at message 100,000 as
   * at message 1. `hasMore` says whether more lie beyond the page in the direction read.
   */
  async page(
    conversationId: string,
    options: { limit: number; before?: MessagePosition; after?: MessagePosition },
  ): Promise<{ rows: Message[]; hasMore: boolean }> {
    const keyset = (op: '<' | '>', at: MessagePosition): SQL =>
      sql`(${messages.createdAt}, ${messages.id}) ${sql.raw(op)} (${at.createdAt.toISOString()}::timestamptz, ${at.id})`;
    const forward = options.after !== undefined;
    const conditions = [eq(messages.conversationId, conversationId)];
    if (options.after) conditions.push(keyset('>', options.after));
    if (options.before) conditions.push(keyset('<', options.before));
    const order = forward
      ? [asc(messages.createdAt), asc(messages.id)]
      : [desc(messages.createdAt), desc(messages.id)];
    const rows = await this.db
      .select(messageColumns)
      .from(messages)
      .where(and(...conditions))
      .orderBy(...order)
      .limit(options.limit + 1);
    const hasMore = rows.length > options.limit;
    const page = rows.slice(0, options.limit);
    return { rows: forward ? page : page.reverse(), hasMore };
  }

  async updateContent(id: string, content: string): Promise<Message | undefined> {
    const [row] = await this.db
      .update(messages)
      .set({ content, isEdited: true, editedAt: new Date() })
      .where(and(eq(messages.id, id), eq(messages.isDeleted, false)))
      .returning(messageColumns);
    return row;
  }

  /**
   * The branch ending at `messageId`: it and its ancestors through parent_id, oldest first
   * (at most `limit`, the newest kept).
   */
  async branch(messageId: string, limit = 500): Promise<Message[]> {
    // One statement (the answer's request waits on it): the ancestors' ids from a recursive
    // walk, their rows in the same query; the order is rebuilt from the parent links below.
    // `= any(array(…))`, not `in (…)`: the planner then fetches the rows by primary key instead
    // of hashing the ids against a scan of every message.
    const found = await this.db
      .select(messageColumns)
      .from(messages)
      .where(
        sql`${messages.id} = any(array(
          with recursive branch(id, parent_id, depth) as (
            select id, parent_id, 0 from ${messages} where id = ${messageId}
            union all
            select m.id, m.parent_id, b.depth + 1 from ${messages} m join branch b on m.id = b.parent_id
            where b.depth < ${limit - 1}
          )
          select id from branch))`,
      );
    const byId = new Map(found.map((m) => [m.id, m]));
    const newestFirst: Message[] = [];
    for (let m = byId.get(messageId); m; m = m.parentId ? byId.get(m.parentId) : undefined) {
      newestFirst.push(m);
    }
    return newestFirst.reverse();
  }

  /** The newest message of a conversation: the leaf of its active branch. */
  async newestMessageId(conversationId: string): Promise<string | undefined> {
    const [row] = await this.db
      .select({ id: messages.id })
      .from(messages)
      .where(eq(messages.conversationId, conversationId))
      .orderBy(sql`${messages.createdAt} desc, ${messages.id} desc`)
      .limit(1);
    return row?.id;
  }

  async softDelete(id: string): Promise<Message | undefined> {
    const [row] = await this.db
      .update(messages)
      .set({ isDeleted: true })
      .where(and(eq(messages.id, id), eq(messages.isDeleted, false)))
      .returning(messageColumns);
    return row;
  }
}

/**
 * The send statement with placeholders: it inserts only when the sender is a participant of the
 * live conversation, touches the conversation in the same statement, and returns the message
 * with its author.
 */
function sendQuery(db: Db) {
  const p = (name: string) => sql.placeholder(name);
  const allowed = db.$with('allowed').as(
    db
      .select({ ok: sql<number>`1`.as('ok') })
      .from(conversations)
      .innerJoin(
        conversationParticipants,
        and(
          eq(conversationParticipants.conversationId, conversations.id),
          eq(conversationParticipants.userId, p('userId')),
        ),
      )
      .where(and(eq(conversations.id, p('conversationId')), eq(conversations.isDeleted, false))),
  );
  const touched = db.$with('touched').as(
    db
      .update(conversations)
      .set({ lastMessageAt: sql`now()`, updatedAt: sql`now()` })
      .where(and(eq(conversations.id, p('conversationId')), sql`exists (select 1 from ${allowed})`))
      .returning({ id: conversations.id }),
  );
  // Values in the table's column order (Drizzle lists every non-generated column).
  const inserted = db.$with('inserted').as(
    db
      .insert(messages)
      .select(
        sql`select ${p('id')}, ${p('conversationId')}, ${p('userId')}, ${p('content')},
                   ${p('role')}::"MessageRole", ${p('type')}::"MessageType", ${p('metadata')}::jsonb,
                   nullif(coalesce(${p('parentId')}::text, (
                     select latest.id from ${messages} latest
                     where latest.conversation_id = ${p('conversationId')}
                     order by latest.created_at desc, latest.id desc limit 1)), ''),
                   null, ${p('status')}::"MessageStatus", false, false, null, null,
                   null, now(), now(), null, ${p('clientMessageId')}
            where exists (select 1 from ${allowed})`,
      )
      .returning(messageColumns),
  );
  return db
    .with(allowed, touched, inserted)
    .select({
      message: columnsOf(inserted),
      authorUsername: users.username,
      authorAvatar: users.avatar,
      settings: conversations.settings,
    })
    .from(inserted)
    .innerJoin(users, eq(users.id, inserted.userId))
    .innerJoin(conversations, eq(conversations.id, inserted.conversationId));
}

/** A message-shaped subquery's columns as a nested selection (Drizzle will not select it whole). */
function columnsOf<T extends Record<keyof typeof messageColumns, unknown>>(subquery: T) {
  return Object.fromEntries(
    Object.keys(messageColumns).map((key) => [key, subquery[key as keyof typeof messageColumns]]),
  ) as { [K in keyof typeof messageColumns]: T[K] };
}
