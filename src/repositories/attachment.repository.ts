// Attachments as they appear on messages (uploads themselves come with the attachments API).
import { and, asc, eq, inArray, isNull } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { attachments, type Attachment } from '../db/schema.js';

export class AttachmentRepository {
  constructor(private readonly db: Db) {}

  /** Those of `ids` that `uploaderId` uploaded and no message uses yet. */
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
      );
  }

  async listForMessages(messageIds: readonly string[]): Promise<Attachment[]> {
    if (messageIds.length === 0) return [];
    return this.db
      .select()
      .from(attachments)
      .where(inArray(attachments.messageId, [...messageIds]))
      .orderBy(asc(attachments.createdAt), asc(attachments.id));
  }
}
