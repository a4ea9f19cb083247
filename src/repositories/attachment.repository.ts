// Attachments: uploads, the messages that use them, and what the cleanup job removes.
import { and, asc, eq, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import {
  attachments,
  conversations,
  messages,
  type Attachment,
  type NewAttachment,
} from '../db/schema.js';

/** An attachment and where it was sent, if it was. */
export interface PlacedAttachment {
  attachment: Attachment;
  /** The conversation of the message that uses it; null while unsent. */
  conversationId: string | null;
  /** Its message, or that message's conversation, was deleted: the file is not served. */
  removed: boolean;
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
   * The condition is checked again on each row as it is deleted, so an upload a message claims
   * meanwhile stays (with its file).
   */
  async deleteUnattached(before: Date, limit: number): Promise<string[]> {
    const stale = and(isNull(attachments.messageId), lt(attachments.createdAt, before));
    const rows = await this.db
      .delete(attachments)
      .where(
        and(
          stale,
          inArray(
            attachments.id,
            this.db.select({ id: attachments.id }).from(attachments).where(stale).limit(limit),
          ),
        ),
      )
      .returning({ filename: attachments.filename });
    return rows.map((r) => r.filename);
  }

  /** Deletes up to `limit` attachments of deleted messages or conversations; returns their files. */
  async deleteRemoved(limit: number): Promise<string[]> {
    const removed = this.db
      .select({ id: attachments.id })
      .from(attachments)
      .innerJoin(messages, eq(messages.id, attachments.messageId))
      .innerJoin(conversations, eq(conversations.id, messages.conversationId))
      .where(or(eq(messages.isDeleted, true), eq(conversations.isDeleted, true)))
      .limit(limit);
    const rows = await this.db
      .delete(attachments)
      .where(inArray(attachments.id, removed))
      .returning({ filename: attachments.filename });
    return rows.map((r) => r.filename);
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
