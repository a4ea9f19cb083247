// The last step of deleting an account (docs/auth.md "Deleting an account"): in one transaction,
// the user's row and everything that is theirs alone, once nothing new refers to them.
import { and, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { retryOnConflict } from '../db/errors.js';
import {
  attachments,
  conversationParticipants,
  conversations,
  messages,
  userSessions,
  users,
} from '../db/schema.js';

export type DeleteUserResult =
  | { status: 'deleted'; filenames: string[] }
  /** Something of the user appeared since the caller cleared it: a live session or membership. */
  | { status: 'busy' }
  | { status: 'missing' };

const p = conversationParticipants;

export class AccountRepository {
  constructor(private readonly db: Db) {}

  /**
   * Deletes the user, provided they have no live session and are in no live conversation (the
   * caller revoked and left those first). The user's row is locked before that is checked: every
   * insert that refers to the user (a session, a membership) share-locks it through its foreign
   * key, so one still in flight is waited for and then seen, and any later one fails.
   *
   * With the user go, by cascade, their sessions, rotated tokens, memberships of deleted
   * conversations and reactions; their messages, generations and the uploads that stay lose
   * their author (SET NULL). Deleted here too: the deleted conversations where the user was the
   * only member left (with every message and file in them), and the user's uploads that are not
   * part of a live message of a live conversation. Returns the stored files of the deleted
   * attachments, for the caller to remove once this has committed.
   */
  async deleteUser(userId: string): Promise<DeleteUserResult> {
    return retryOnConflict(() => this.remove(userId));
  }

  private async remove(userId: string): Promise<DeleteUserResult> {
    return this.db.transaction(async (tx): Promise<DeleteUserResult> => {
      const [user] = await tx
        .select({ id: users.id })
        .from(users)
        .where(eq(users.id, userId))
        .for('update');
      if (!user) return { status: 'missing' };

      const [member] = await tx
        .select({ id: p.id })
        .from(p)
        .innerJoin(
          conversations,
          and(eq(conversations.id, p.conversationId), eq(conversations.isDeleted, false)),
        )
        .where(eq(p.userId, userId))
        .limit(1);
      const [session] = await tx
        .select({ id: userSessions.id })
        .from(userSessions)
        .where(and(eq(userSessions.userId, userId), isNull(userSessions.revokedAt)))
        .limit(1);
      if (member || session) return { status: 'busy' };

      const solo = tx
        .select({ id: conversations.id })
        .from(conversations)
        .innerJoin(p, and(eq(p.conversationId, conversations.id), eq(p.userId, userId)))
        .where(
          and(
            eq(conversations.isDeleted, true),
            sql`not exists (select 1 from ${p} other
                 where other.conversation_id = ${conversations.id} and other.user_id <> ${userId})`,
          ),
        );
      const soloIds = (await solo).map((row) => row.id);

      const inSolo = soloIds.length
        ? sql`${attachments.messageId} in (select ${messages.id} from ${messages}
               where ${inArray(messages.conversationId, soloIds)})`
        : sql`false`;
      // The user's uploads that no live conversation shows: never sent, or sent in a message or
      // conversation since deleted. (Those in live conversations stay, as their messages do.)
      const theirsUnshown = sql`(${attachments.uploaderId} = ${userId} and not exists (
          select 1 from ${messages} m join ${conversations} c on c.id = m.conversation_id
          where m.id = ${attachments.messageId} and not m.is_deleted and not c.is_deleted))`;
      const files = await tx
        .delete(attachments)
        .where(sql`${inSolo} or ${theirsUnshown}`)
        .returning({ filename: attachments.filename });
      if (soloIds.length) await tx.delete(conversations).where(inArray(conversations.id, soloIds));
      await tx.delete(users).where(eq(users.id, userId));
      return { status: 'deleted', filenames: files.map((row) => row.filename) };
    });
  }
}
