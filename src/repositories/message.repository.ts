// Messages: the send statement, access checks through a message, keyset pages, edits and
// soft deletes.
import { createId } from '../utils/ids.js';
import { and, asc, desc, eq, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { isUniqueViolation, retryOnConflict } from '../db/errors.js';
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
import {
  lockVersionGroup,
  summarizeVersions,
  supersedeVersions,
  type VersionSummary,
} from './message-versions.js';
import { conversationClock } from './message-clock.js';

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
 * A user's message (the AI's answers arrive with the generation runner). `parentId` is only the
 * message it replies to, when the client chose one: a reply to a message off the active branch is
 * off it too. Sending never hides another message (docs/api.md "Branches").
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
      /** A new version's place among its group's (it is the newest); null for other messages. */
      versions: VersionSummary | null;
    }
  | { ok: false; reason: 'not-a-participant' | 'duplicate-client-id' | 'attachments-unavailable' };

class AttachmentsUnavailable extends Error {}
class NotAParticipant extends Error {}

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
    return this.create(values, attachmentIds);
  }

  /**
   * Edit-and-resend: the new message is an alternative of `replacesId` (a version of the same
   * message). In the same transaction every other version of it, and what replied to them, leaves
   * the active branch; the version group is locked first, so concurrent alternatives of one
   * message leave exactly one of them active.
   */
  async createAlternative(values: NewMessage, replacesId: string): Promise<SendResult> {
    return this.create(values, [], replacesId);
  }

  private async create(
    values: NewMessage,
    attachmentIds: readonly string[],
    replacesId?: string,
  ): Promise<SendResult> {
    try {
      const row =
        attachmentIds.length === 0 && !replacesId
          ? await this.sendStatement(this.db, values, null).then(
              (r) => r && { ...r, versions: null },
            )
          : await retryOnConflict(() =>
              this.db.transaction(async (tx) => {
                // The versions leave the branch before the new one is written: the send statement
                // locks the conversation's row, and that lock comes last (see supersedeVersions).
                const root = replacesId ? await lockVersionGroup(tx, replacesId) : null;
                if (root) await supersedeVersions(tx, root);
                const inserted = await this.sendStatement(tx, values, root);
                if (!inserted) {
                  if (root) throw new NotAParticipant(); // undo the superseding too
                  return undefined;
                }
                if (attachmentIds.length)
                  await this.claimAttachments(
                    tx,
                    inserted.message.id,
                    values.userId,
                    attachmentIds,
                  );
                const versions = root
                  ? ((await summarizeVersions(tx, [inserted.message])).get(inserted.message.id) ??
                    null)
                  : null;
                return { ...inserted, versions };
              }),
            );
      if (!row) return { ok: false, reason: 'not-a-participant' };
      return {
        ok: true,
        message: row.message,
        author: { id: values.userId, username: row.authorUsername, avatar: row.authorAvatar },
        settings: row.settings,
        versions: row.versions,
      };
    } catch (error) {
      if (error instanceof NotAParticipant) return { ok: false, reason: 'not-a-participant' };
      if (error instanceof AttachmentsUnavailable)
        return { ok: false, reason: 'attachments-unavailable' };
      if (isUniqueViolation(error, 'messages_user_id_client_message_id_key')) {
        return { ok: false, reason: 'duplicate-client-id' };
      }
      throw error;
    }
  }

  private async sendStatement(db: Db, v: NewMessage, alternativeOf: string | null) {
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
      alternativeOf,
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
  async position(
    conversationId: string,
    messageId: string,
  ): Promise<(MessagePosition & { superseded: boolean }) | undefined> {
    const [row] = await this.db
      .select({ createdAt: messages.createdAt, id: messages.id, superseded: messages.superseded })
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
    options: {
      limit: number;
      before?: MessagePosition;
      after?: MessagePosition;
      /** Only the active branch: what no alternative has replaced. */
      activeOnly?: boolean;
    },
  ): Promise<{ rows: Message[]; hasMore: boolean }> {
    const keyset = (op: '<' | '>', at: MessagePosition): SQL =>
      sql`(${messages.createdAt}, ${messages.id}) ${sql.raw(op)} (${at.createdAt.toISOString()}::timestamptz, ${at.id})`;
    const forward = options.after !== undefined;
    const conditions = [eq(messages.conversationId, conversationId)];
    if (options.after) conditions.push(keyset('>', options.after));
    if (options.before) conditions.push(keyset('<', options.before));
    if (options.activeOnly) conditions.push(eq(messages.superseded, false));
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
   * What an answer to `question` reads: the active branch up to and including the question,
   * oldest first (the newest `limit` of it). The question itself is included even when it is off
   * the active branch (an answer regenerated there). One backward range scan of the
   * (conversation_id, created_at, id) index: the answer's request waits on it.
   */
  async history(question: MessagePosition & { conversationId: string }, limit = 500) {
    const rows = await this.db
      .select(messageColumns)
      .from(messages)
      .where(
        and(
          eq(messages.conversationId, question.conversationId),
          sql`(${messages.createdAt}, ${messages.id}) <= (${question.createdAt.toISOString()}::timestamptz, ${question.id})`,
          sql`(${messages.superseded} = false or ${messages.id} = ${question.id})`,
        ),
      )
      .orderBy(desc(messages.createdAt), desc(messages.id))
      .limit(limit);
    return rows.reverse();
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
  // The columns are named (a column added later with a default cannot shift these values). A
  // reply takes its parent's place on or off the active branch; FOR SHARE waits for an
  // alternative replacing the parent to commit, so a reply cannot slip past it (docs/api.md).
  const parent = db.$with('parent').as(
    db
      .select({ superseded: messages.superseded })
      .from(messages)
      .where(and(eq(messages.id, p('parentId')), eq(messages.conversationId, p('conversationId'))))
      .for('share'),
  );
  // The conversation's row is the message clock: the message's created_at is read from it under
  // the row's lock, strictly after the one before (see conversationClock). The parent is read
  // (and share-locked) first: `(select count(*) from parent) < 2` is always true, and is there
  // so the parent's lock comes before the conversation's, the order every writer keeps.
  const touched = db.$with('touched').as(
    db
      .update(conversations)
      .set({ lastMessageAt: conversationClock(), updatedAt: sql`now()` })
      .where(
        and(
          eq(conversations.id, p('conversationId')),
          sql`exists (select 1 from ${allowed})`,
          sql`(select count(*) from ${parent}) < 2`,
        ),
      )
      .returning({ at: sql<Date>`${conversations.lastMessageAt}`.as('at') }),
  );
  const returned = sql.join(
    Object.values(messageColumns).map((column) => sql.identifier(column.name)),
    sql`, `,
  );
  const inserted = db.$with('inserted', messageColumns).as(
    sql`insert into ${messages} (id, conversation_id, user_id, content, role, type, metadata,
          parent_id, status, client_message_id, alternative_of, superseded, chosen, created_at)
        select ${p('id')}, ${p('conversationId')}, ${p('userId')}, ${p('content')},
               ${p('role')}::"MessageRole", ${p('type')}::"MessageType", ${p('metadata')}::jsonb,
               ${p('parentId')}::text, ${p('status')}::"MessageStatus", ${p('clientMessageId')}::text,
               ${p('alternativeOf')}::text, coalesce((select superseded from ${parent}), false),
               case when ${p('alternativeOf')}::text is not null then true end,
               (select at from ${touched})
        where exists (select 1 from ${touched})
        returning ${returned}`,
  );
  return db
    .with(allowed, parent, touched, inserted)
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
