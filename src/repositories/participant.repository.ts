// Who is in a conversation, with which role, and how far each has read; membership changes
// made one at a time per conversation (changeMembership).
import { and, asc, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import {
  conversationParticipants,
  conversations,
  users,
  type ParticipantRole,
} from '../db/schema.js';

export interface ParticipantRow {
  userId: string;
  username: string | null;
  avatar: string | null;
  role: ParticipantRole;
  joinedAt: Date;
  lastReadAt: Date;
}

/**
 * One conversation's membership, read and changed inside a transaction that holds the
 * conversation's row lock: nobody else changes who is in it, or their roles, until the
 * transaction ends, so what a read returns stays true for the rest of the work.
 */
export interface LockedMembership {
  roleOf(userId: string): Promise<ParticipantRole | undefined>;
  /**
   * Who heads the conversation: its OWNER, else whoever should inherit it (the longest-serving
   * ADMIN, else MEMBER, by joined_at then id); undefined when nobody is left in it.
   */
  head(): Promise<{ userId: string; role: ParticipantRole } | undefined>;
  userIds(): Promise<string[]>;
  userExists(userId: string): Promise<boolean>;
  /** False when the user is already a participant. */
  add(userId: string, role: ParticipantRole): Promise<boolean>;
  remove(userId: string): Promise<boolean>;
  setRole(userId: string, role: ParticipantRole): Promise<void>;
  softDeleteConversation(): Promise<void>;
}

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

const p = conversationParticipants;

export class ParticipantRepository {
  constructor(private readonly db: Db) {}

  async list(conversationId: string): Promise<ParticipantRow[]> {
    return this.db
      .select({
        userId: p.userId,
        username: users.username,
        avatar: users.avatar,
        role: p.role,
        joinedAt: p.joinedAt,
        lastReadAt: p.lastReadAt,
      })
      .from(p)
      .innerJoin(users, eq(users.id, p.userId))
      .where(eq(p.conversationId, conversationId))
      .orderBy(asc(p.joinedAt), asc(p.id));
  }

  /**
   * Runs `work` in one transaction that first locks the live conversation's row, so the
   * membership changes of one conversation (adds, removals, ownership hand-overs, deletion)
   * happen one after another on PostgreSQL; PGlite has one connection and runs transactions
   * one at a time anyway. Each read inside `work` is a new statement, so under READ COMMITTED
   * it sees everything committed before the lock was granted. Undefined (and nothing done)
   * when the conversation does not exist or is deleted; an error thrown by `work` rolls back.
   */
  async changeMembership<T extends object>(
    conversationId: string,
    work: (membership: LockedMembership) => Promise<T>,
  ): Promise<T | undefined> {
    return this.db.transaction(async (tx) => {
      // NO KEY UPDATE conflicts with itself, which is all the serializing needed; unlike FOR
      // UPDATE it lets messages be inserted meanwhile (their foreign-key check takes KEY SHARE
      // on this row).
      const [locked] = await tx
        .select({ id: conversations.id })
        .from(conversations)
        .where(and(eq(conversations.id, conversationId), eq(conversations.isDeleted, false)))
        .for('no key update');
      if (!locked) return undefined;
      return work(lockedMembership(tx, conversationId));
    });
  }

  /** Moves the read mark forward to `at` (never back); returns the mark now stored. */
  async markRead(conversationId: string, userId: string, at: Date): Promise<Date | undefined> {
    const [row] = await this.db
      .update(p)
      .set({ lastReadAt: sql`greatest(${p.lastReadAt}, ${at.toISOString()}::timestamptz)` })
      .where(and(eq(p.conversationId, conversationId), eq(p.userId, userId)))
      .returning({ lastReadAt: p.lastReadAt });
    return row?.lastReadAt;
  }

  /** The live conversations a user is in. */
  async conversationIdsOf(userId: string): Promise<string[]> {
    const rows = await this.db
      .select({ id: p.conversationId })
      .from(p)
      .innerJoin(
        conversations,
        and(eq(conversations.id, p.conversationId), eq(conversations.isDeleted, false)),
      )
      .where(eq(p.userId, userId));
    return rows.map((row) => row.id);
  }
}

function lockedMembership(tx: Tx, conversationId: string): LockedMembership {
  const inConversation = eq(p.conversationId, conversationId);
  return {
    async roleOf(userId) {
      const [row] = await tx
        .select({ role: p.role })
        .from(p)
        .where(and(inConversation, eq(p.userId, userId)));
      return row?.role;
    },
    async head() {
      const [row] = await tx
        .select({ userId: p.userId, role: p.role })
        .from(p)
        .where(inConversation)
        .orderBy(
          sql`case ${p.role} when 'OWNER' then 0 when 'ADMIN' then 1 else 2 end`,
          asc(p.joinedAt),
          asc(p.id),
        )
        .limit(1);
      return row;
    },
    async userIds() {
      const rows = await tx.select({ userId: p.userId }).from(p).where(inConversation);
      return rows.map((row) => row.userId);
    },
    async userExists(userId) {
      const rows = await tx.select({ id: users.id }).from(users).where(eq(users.id, userId));
      return rows.length > 0;
    },
    async add(userId, role) {
      // ON CONFLICT rather than catching the violation: a failed statement would abort the
      // transaction on PostgreSQL.
      const rows = await tx
        .insert(p)
        .values({ conversationId, userId, role })
        .onConflictDoNothing({ target: [p.conversationId, p.userId] })
        .returning({ id: p.id });
      return rows.length > 0;
    },
    async remove(userId) {
      const rows = await tx
        .delete(p)
        .where(and(inConversation, eq(p.userId, userId)))
        .returning({ id: p.id });
      return rows.length > 0;
    },
    async setRole(userId, role) {
      await tx
        .update(p)
        .set({ role })
        .where(and(inConversation, eq(p.userId, userId)));
    },
    async softDeleteConversation() {
      await tx
        .update(conversations)
        .set({ isDeleted: true })
        .where(eq(conversations.id, conversationId));
    },
  };
}
