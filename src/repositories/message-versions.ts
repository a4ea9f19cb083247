// Versions of one message (regenerate, edit-and-resend): the alternatives share the first
// version's id in `alternative_of`, and only the newest stays on the active branch. Used inside
// the transactions that create an alternative (messages and AI answers alike).
import { and, eq, inArray, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { messages } from '../db/schema.js';

/**
 * Locks the version group of `messageId` (its first version's row, FOR UPDATE) and returns that
 * first version's id. Concurrent alternatives of one message queue here, so each sees the
 * versions committed before it (READ COMMITTED: the statements after the lock see them).
 */
export async function lockVersionGroup(tx: Db, messageId: string): Promise<string> {
  const [message] = await tx
    .select({ root: sql<string>`coalesce(${messages.alternativeOf}, ${messages.id})` })
    .from(messages)
    .where(eq(messages.id, messageId))
    .limit(1);
  if (!message) throw new Error(`message ${messageId} vanished while being replaced`);
  await tx
    .select({ id: messages.id })
    .from(messages)
    .where(eq(messages.id, message.root))
    .for('update');
  return message.root;
}

/**
 * Takes every version of the group off the active branch (the new version is written after
 * this, so it stays on), and then what replied to them (an answer to a replaced question goes
 * with it), level by level. Each level is a new statement, so a reply committed while an earlier
 * level waited for its parent's row is seen. Called before the new version is inserted: the
 * conversation's row, which an insert locks, is then the last lock this transaction takes.
 */
export async function supersedeVersions(tx: Db, root: string): Promise<void> {
  let hidden = await tx
    .update(messages)
    .set({ superseded: true })
    .where(
      and(
        or(eq(messages.id, root), eq(messages.alternativeOf, root)),
        eq(messages.superseded, false),
      ),
    )
    .returning({ id: messages.id });
  while (hidden.length > 0) {
    hidden = await tx
      .update(messages)
      .set({ superseded: true })
      .where(
        and(
          inArray(
            messages.parentId,
            hidden.map((m) => m.id),
          ),
          eq(messages.superseded, false),
        ),
      )
      .returning({ id: messages.id });
  }
}
