// Versions of one message (regenerate, edit-and-resend): the alternatives share the first
// version's id in `alternative_of`, and one of them, the chosen one (`chosen`), is on the branch
// when its parent is. Used inside the transactions that create or choose a version (messages and
// AI answers alike), and by the views that number them.
import { and, asc, eq, inArray, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { messages } from '../db/schema.js';

/** "Version 2 of 3": where a message stands among the versions of its group, oldest first. */
export interface VersionSummary {
  number: number;
  count: number;
  previousId: string | null;
  nextId: string | null;
}

/** A message whose place on the active branch changed, and whether an answer is still written. */
export interface BranchChange {
  id: string;
  status: string;
}

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
  await lockMessage(tx, message.root);
  return message.root;
}

/** A message's row, FOR UPDATE (a group's first row: the lock every change of its versions takes). */
export async function lockMessage(tx: Db, id: string): Promise<void> {
  await tx.select({ id: messages.id }).from(messages).where(eq(messages.id, id)).for('update');
}

/**
 * Takes every version of the group off the active branch and unchooses it (the new version is
 * written after this, chosen, so it stays on), and then what replied to them (an answer to a
 * replaced question goes with it), level by level. Called before the new version is inserted:
 * the conversation's row, which an insert locks, is then the last lock this transaction takes.
 */
export async function supersedeVersions(tx: Db, root: string): Promise<void> {
  const versions = await tx
    .update(messages)
    .set({ superseded: true, chosen: false })
    .where(
      and(
        or(eq(messages.id, root), eq(messages.alternativeOf, root)),
        sql`(${messages.superseded} = false or ${messages.chosen} is not false)`,
      ),
    )
    .returning({ id: messages.id });
  await hideReplies(
    tx,
    versions.map((m) => m.id),
  );
}

/**
 * Takes what replied to `ids` (transitively) off the active branch and returns what left it.
 * Each level is a new statement, so a reply committed while an earlier level waited for its
 * parent's row is seen (a reply reads its parent FOR SHARE and copies its place).
 */
export async function hideReplies(tx: Db, ids: string[]): Promise<BranchChange[]> {
  const hidden: BranchChange[] = [];
  let level = ids;
  while (level.length > 0) {
    const rows = await tx
      .update(messages)
      .set({ superseded: true })
      .where(and(inArray(messages.parentId, level), eq(messages.superseded, false)))
      .returning({ id: messages.id, status: messages.status });
    hidden.push(...rows);
    level = rows.map((m) => m.id);
  }
  return hidden;
}

/**
 * Brings `id` (whose parent is on the active branch) back onto it, and what replied to it, level
 * by level, down through the chosen versions only: a version not chosen stays off, with what
 * replied to it. Returns what joined the branch.
 */
export async function revealFrom(tx: Db, id: string): Promise<BranchChange[]> {
  const shown: BranchChange[] = [];
  let level = await tx
    .update(messages)
    .set({ superseded: false })
    .where(and(eq(messages.id, id), eq(messages.superseded, true)))
    .returning({ id: messages.id, status: messages.status });
  while (level.length > 0) {
    shown.push(...level);
    level = await tx
      .update(messages)
      .set({ superseded: false })
      .where(
        and(
          inArray(
            messages.parentId,
            level.map((m) => m.id),
          ),
          eq(messages.superseded, true),
          sql`${messages.chosen} is not false`,
        ),
      )
      .returning({ id: messages.id, status: messages.status });
  }
  return shown;
}

/**
 * The version summary of each message of `rows` that has other versions, in one query (none
 * when no row has any): a group's versions in conversation order, the first one first.
 */
export async function summarizeVersions(
  db: Db,
  rows: ReadonlyArray<{ id: string; alternativeOf: string | null; chosen: boolean | null }>,
): Promise<Map<string, VersionSummary>> {
  const summaries = new Map<string, VersionSummary>();
  const roots = [
    ...new Set(rows.filter((r) => r.chosen !== null).map((r) => r.alternativeOf ?? r.id)),
  ];
  if (roots.length === 0) return summaries;
  const members = await db
    .select({
      id: messages.id,
      root: sql<string>`coalesce(${messages.alternativeOf}, ${messages.id})`,
    })
    .from(messages)
    .where(or(inArray(messages.id, roots), inArray(messages.alternativeOf, roots)))
    .orderBy(asc(messages.createdAt), asc(messages.id));
  const groups = new Map<string, string[]>();
  for (const { id, root } of members) {
    const group = groups.get(root);
    if (group) group.push(id);
    else groups.set(root, [id]);
  }
  for (const ids of groups.values()) {
    ids.forEach((id, i) =>
      summaries.set(id, {
        number: i + 1,
        count: ids.length,
        previousId: ids[i - 1] ?? null,
        nextId: ids[i + 1] ?? null,
      }),
    );
  }
  return summaries;
}
