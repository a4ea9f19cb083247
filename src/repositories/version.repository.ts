// Choosing a version (docs/api.md "Branches"): which version of a regenerated answer or an
// edited question is on the active branch, and the version numbers message views show.
import { and, eq, inArray, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { retryOnConflict } from '../db/errors.js';
import { messages, type Message } from '../db/schema.js';
import {
  hideReplies,
  lockMessage,
  revealFrom,
  summarizeVersions,
  type BranchChange,
  type VersionSummary,
} from './message-versions.js';

export type ActivateResult =
  | {
      ok: true;
      /** What joined the active branch and what left it, each in the order it was changed. */
      joined: string[];
      left: string[];
    }
  | { ok: false; reason: 'not-a-version' | 'answer-being-written' };

/** Undoes a switch that would move an answer still being written on or off the branch. */
class AnswerBeingWritten extends Error {}

export class VersionRepository {
  constructor(private readonly db: Db) {}

  /**
   * Makes `messageId` the chosen version of its group, and every version on its way up to the
   * start of its thread the chosen one of its own group: the active branch becomes the path from
   * it back to the root (SPEC §4). The versions no longer chosen leave the branch with what
   * replied to them; the chosen ones come back with what replied to them, down through the
   * versions chosen before. Every group on the path, and the path, is locked first (FOR UPDATE,
   * top first, as a regenerate or edit-and-resend of one of them does), so switches and new
   * versions of one group run one after the other. Undefined when the message does not exist.
   */
  async activate(messageId: string): Promise<ActivateResult | undefined> {
    try {
      return await retryOnConflict(() =>
        this.db.transaction((tx) => this.activateOnce(tx, messageId)),
      );
    } catch (error) {
      if (error instanceof AnswerBeingWritten) return { ok: false, reason: 'answer-being-written' };
      throw error;
    }
  }

  private async activateOnce(tx: Db, messageId: string): Promise<ActivateResult | undefined> {
    // Parent links never change once written: the path can be read before anything is locked.
    const path = await pathUp(tx, messageId);
    if (path.length === 0) return undefined;
    // Each step's group (its first row), then the step itself, top first: the order a regenerate
    // (the question FOR SHARE, then the answers' group) and a reply (the parent FOR SHARE) take.
    for (const step of path) {
      await lockMessage(tx, step.root);
      if (step.id !== step.root) await lockMessage(tx, step.id);
    }
    // Read after the locks: what the switches and versions committed before this one left.
    const state = new Map(
      (
        await tx
          .select({ id: messages.id, chosen: messages.chosen })
          .from(messages)
          .where(
            inArray(
              messages.id,
              path.map((step) => step.id),
            ),
          )
      ).map((row) => [row.id, row.chosen]),
    );
    if ((state.get(messageId) ?? null) === null) return { ok: false, reason: 'not-a-version' };
    const unchosen = path.filter((step) => state.get(step.id) === false);
    const left: BranchChange[] = [];
    for (const step of unchosen) {
      // The version chosen until now (one at most: the unique index) is unchosen first, and
      // leaves the branch with its replies if it was on it (only the topmost group's can be).
      const previous = await tx
        .update(messages)
        .set({ chosen: false })
        .where(
          and(
            or(eq(messages.id, step.root), eq(messages.alternativeOf, step.root)),
            eq(messages.chosen, true),
          ),
        )
        .returning({ id: messages.id, superseded: messages.superseded });
      const wasShown = previous.filter((version) => !version.superseded).map((v) => v.id);
      if (wasShown.length) {
        left.push(
          ...(await tx
            .update(messages)
            .set({ superseded: true })
            .where(inArray(messages.id, wasShown))
            .returning({ id: messages.id, status: messages.status })),
          ...(await hideReplies(tx, wasShown)),
        );
      }
      await tx.update(messages).set({ chosen: true }).where(eq(messages.id, step.id));
    }
    // Every message above the topmost one chosen now was chosen already: its parent is shown.
    const joined = unchosen[0] ? await revealFrom(tx, unchosen[0].id) : [];
    if ([...joined, ...left].some((change) => change.status === 'SENDING'))
      throw new AnswerBeingWritten();
    return {
      ok: true,
      joined: joined.map((m) => m.id),
      left: left.map((m) => m.id),
    };
  }

  /** "Version n of m" of each row that has other versions (one query; none without versions). */
  summaries(rows: readonly Message[]): Promise<Map<string, VersionSummary>> {
    return summarizeVersions(this.db, rows);
  }
}

/**
 * The message and the messages it replies to, transitively, the first of the thread first, each
 * with its version group's first row (itself when it has no versions).
 */
async function pathUp(tx: Db, messageId: string): Promise<Array<{ id: string; root: string }>> {
  const result = (await tx.execute(sql`
    with recursive path (id, parent_id, root, depth) as (
      select id, parent_id, coalesce(alternative_of, id), 0 from messages where id = ${messageId}
      union all
      select m.id, m.parent_id, coalesce(m.alternative_of, m.id), p.depth + 1
      from messages m join path p on m.id = p.parent_id
    )
    select id, root from path order by depth desc`)) as {
    rows: Array<{ id: string; root: string }>;
  };
  return result.rows;
}
