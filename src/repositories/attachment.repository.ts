// Attachments: uploads, the messages that use them, and what the cleanup job removes.
import { and, asc, eq, inArray, isNull, lt, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import {
  attachments,
  conversations,
  messages,
  users,
  type Attachment,
  type NewAttachment,
} from '../db/schema.js';

/**
 * The attachment is its uploader's avatar. Only one's own upload can be one's avatar, so the
 * uploader's row (a primary-key probe) is the only one to look at.
 */
const isAvatar = sql<boolean>`exists (select 1 from ${users} where ${users.id} = ${attachments.uploaderId} and ${users.avatar} = ${attachments.id})`;

/** An attachment and where it was sent, if it was. */
export interface PlacedAttachment {
  attachment: Attachment;
  /** The conversation of the message that uses it; null while unsent. */
  conversationId: string | null;
  /** Its message, or that message's conversation, was deleted: the file is not served. */
  removed: boolean;
  /** It is its uploader's avatar: any signed-in user may see it, and no cleanup removes it. */
  avatar: boolean;
}

export class AttachmentRepository {
  constructor(private readonly db: Db) {}

  async create(values: NewAttachment): Promise<Attachment> {
    const [row] = await this.db.insert(attachments).values(values).returning();
    return row!;
  }

  async getPlaced(id: string): Promise<PlacedAttachment | undefined> {
    const [row] = await this.db
      .select({
        attachment: attachments,
        conversationId: messages.conversationId,
        removed: sql<boolean>`coalesce(${messages.isDeleted} or ${conversations.isDeleted}, false)`,
        avatar: isAvatar,
      })
      .from(attachments)
      .leftJoin(messages, eq(messages.id, attachments.messageId))
      .leftJoin(conversations, eq(conversations.id, messages.conversationId))
      .where(eq(attachments.id, id))
      .limit(1);
    return row;
  }

  /**
   * Those of `ids` that `uploaderId` uploaded and no message uses yet, in the order a message
   * lists its attachments (upload time, then id: as `listForMessages`).
   */
  async listUnsent(ids: readonly string[], uploaderId: string): Promise<Attachment[]> {
    if (ids.length === 0) return [];
    return this.db
      .select()
      .from(attachments)
      .where(
        and(
          inArray(attachments.id, [...ids]),
          eq(attachments.uploaderId, uploaderId),
          isNull(attachments.messageId),
        ),
      )
      .orderBy(asc(attachments.createdAt), asc(attachments.id));
  }

  async listForMessages(messageIds: readonly string[]): Promise<Attachment[]> {
    if (messageIds.length === 0) return [];
    return this.db
      .select()
      .from(attachments)
      .where(inArray(attachments.messageId, [...messageIds]))
      .orderBy(asc(attachments.createdAt), asc(attachments.id));
  }

  /**
   * Deletes up to `limit` uploads no message used, made before `before`; returns their files.
   * Avatars stay (see `deleteLocked`); so does an upload a message claims meanwhile (the
   * condition is checked again on each row as it is deleted).
   */
  async deleteUnattached(before: Date, limit: number): Promise<string[]> {
    return this.deleteLocked(
      and(isNull(attachments.messageId), lt(attachments.createdAt, before))!,
      limit,
    );
  }

  /** Deletes up to `limit` attachments of deleted messages or conversations; returns their files. */
  async deleteRemoved(limit: number): Promise<string[]> {
    const ofRemovedMessage = sql`exists (
      select 1 from ${messages} m join ${conversations} c on c.id = m.conversation_id
      where m.id = ${attachments.messageId} and (m.is_deleted or c.is_deleted))`;
    return this.deleteLocked(ofRemovedMessage, limit);
  }

  /**
   * Deletes up to `limit` attachments matching `condition` that are nobody's avatar. They are
   * locked first, skipping any another transaction holds (one making it an avatar holds it), and
   * the delete is a later statement, so under READ COMMITTED it sees every avatar set before the
   * lock was taken: an upload becomes an avatar or is deleted, never both.
   */
  private async deleteLocked(condition: SQL, limit: number): Promise<string[]> {
    const candidate = and(condition, sql`not ${isAvatar}`);
    return this.db.transaction(async (tx) => {
      const locked = await tx
        .select({ id: attachments.id })
        .from(attachments)
        .where(candidate)
        .limit(limit)
        .for('update', { skipLocked: true });
      if (locked.length === 0) return [];
      const rows = await tx
        .delete(attachments)
        .where(
          and(
            inArray(
              attachments.id,
              locked.map((row) => row.id),
            ),
            candidate,
          ),
        )
        .returning({ filename: attachments.filename });
      return rows.map((r) => r.filename);
    });
  }

  /** A page of one user's uploads, oldest first, after the (createdAt, id) position `after`. */
  async pageByUploader(
    uploaderId: string,
    limit: number,
    after?: { createdAt: Date; id: string },
  ): Promise<Attachment[]> {
    return this.db
      .select()
      .from(attachments)
      .where(
        and(
          eq(attachments.uploaderId, uploaderId),
          after
            ? sql`(${attachments.createdAt}, ${attachments.id}) > (${after.createdAt.toISOString()}::timestamptz, ${after.id})`
            : undefined,
        ),
      )
      .orderBy(asc(attachments.createdAt), asc(attachments.id))
      .limit(limit);
  }

  /** Those of `filenames` some attachment still names. */
  async existingFilenames(filenames: readonly string[]): Promise<Set<string>> {
    if (filenames.length === 0) return new Set();
    const rows = await this.db
      .select({ filename: attachments.filename })
      .from(attachments)
      .where(inArray(attachments.filename, [...filenames]));
    return new Set(rows.map((r) => r.filename));
  }
}
