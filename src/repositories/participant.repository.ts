// Who is in a conversation, with which role, and how far each has read.
import { and, asc, eq, ne, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { isUniqueViolation } from '../db/errors.js';
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

  async getRole(conversationId: string, userId: string): Promise<ParticipantRole | undefined> {
    const [row] = await this.db
      .select({ role: p.role })
      .from(p)
      .where(and(eq(p.conversationId, conversationId), eq(p.userId, userId)))
      .limit(1);
    return row?.role;
  }

  async userIds(conversationId: string): Promise<string[]> {
    const rows = await this.db
      .select({ userId: p.userId })
      .from(p)
      .where(eq(p.conversationId, conversationId));
    return rows.map((row) => row.userId);
  }

  /** Adds a participant; false when the user is already one. */
  async add(conversationId: string, userId: string, role: ParticipantRole): Promise<boolean> {
    try {
      await this.db.insert(p).values({ conversationId, userId, role });
      return true;
    } catch (error) {
      if (isUniqueViolation(error)) return false;
      throw error;
    }
  }

  async remove(conversationId: string, userId: string): Promise<boolean> {
    const rows = await this.db
      .delete(p)
      .where(and(eq(p.conversationId, conversationId), eq(p.userId, userId)))
      .returning({ id: p.id });
    return rows.length > 0;
  }

  async setRole(conversationId: string, userId: string, role: ParticipantRole): Promise<void> {
    await this.db
      .update(p)
      .set({ role })
      .where(and(eq(p.conversationId, conversationId), eq(p.userId, userId)));
  }

  /** Who inherits ownership when the owner leaves: the longest-serving admin, else member. */
  async successor(conversationId: string, leavingUserId: string): Promise<string | undefined> {
    const [row] = await this.db
      .select({ userId: p.userId })
      .from(p)
      .where(and(eq(p.conversationId, conversationId), ne(p.userId, leavingUserId)))
      .orderBy(sql`case ${p.role} when 'ADMIN' then 0 else 1 end`, asc(p.joinedAt), asc(p.id))
      .limit(1);
    return row?.userId;
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
