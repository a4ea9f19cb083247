// Users: lookups by id, email and username, creation and profile changes with the unique
// constraints reported by name, password changes.
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { isUniqueViolation } from '../db/errors.js';
import {
  attachments,
  conversations,
  messages,
  users,
  type Attachment,
  type NewUser,
  type User,
} from '../db/schema.js';

export interface UserSummaryRow {
  id: string;
  username: string | null;
  avatar: string | null;
}

export type CreateUserResult =
  { ok: true; user: User } | { ok: false; taken: 'email' | 'username' };

export interface ProfileChange {
  username?: string | undefined;
  /** An attachment id, or null to clear. */
  avatar?: string | null | undefined;
}

/** The picture a user wants as avatar, as found under lock (see `updateProfile`). */
export interface AvatarCandidate {
  attachment: Attachment;
  /** Its message, or that message's conversation, was deleted. */
  removed: boolean;
}

export type UpdateProfileResult =
  { ok: true; user: User } | { ok: false; reason: 'username-taken' | 'avatar-refused' | 'missing' };

export class UserRepository {
  constructor(private readonly db: Db) {}

  async getById(id: string): Promise<User | undefined> {
    const [row] = await this.db.select().from(users).where(eq(users.id, id)).limit(1);
    return row;
  }

  async getByEmail(email: string): Promise<User | undefined> {
    const [row] = await this.db.select().from(users).where(eq(users.email, email)).limit(1);
    return row;
  }

  /** Relies on the unique indexes, not a prior lookup, so two racing sign-ups cannot both win. */
  async create(
    values: Pick<NewUser, 'email' | 'username' | 'passwordHash'>,
  ): Promise<CreateUserResult> {
    try {
      const [user] = await this.db.insert(users).values(values).returning();
      if (!user) throw new Error('INSERT … RETURNING returned no row');
      return { ok: true, user };
    } catch (error) {
      if (isUniqueViolation(error, 'users_email_key')) return { ok: false, taken: 'email' };
      if (isUniqueViolation(error)) return { ok: false, taken: 'username' };
      throw error;
    }
  }

  /** Exact username, ignoring case (the users_username_lower_key index answers it). */
  async getByUsername(username: string): Promise<User | undefined> {
    const [row] = await this.db
      .select()
      .from(users)
      .where(sql`lower(${users.username}) = lower(${username})`)
      .limit(1);
    return row;
  }

  /**
   * Changes a user's username and/or avatar. A new avatar is first read and share-locked, and
   * handed to `acceptAvatar` (the caller's rule: whose, what type): the cleanup job locks the
   * uploads it deletes (and skips locked ones), so an upload cannot be deleted between this check
   * and the moment it becomes an avatar (which the job then leaves alone).
   */
  async updateProfile(
    id: string,
    change: ProfileChange,
    acceptAvatar: (candidate: AvatarCandidate | undefined) => boolean,
  ): Promise<UpdateProfileResult> {
    try {
      return await this.db.transaction(async (tx): Promise<UpdateProfileResult> => {
        if (change.avatar) {
          const [candidate] = await tx
            .select({
              attachment: attachments,
              removed: sql<boolean>`coalesce(${messages.isDeleted} or ${conversations.isDeleted}, false)`,
            })
            .from(attachments)
            .leftJoin(messages, eq(messages.id, attachments.messageId))
            .leftJoin(conversations, eq(conversations.id, messages.conversationId))
            .where(eq(attachments.id, change.avatar))
            .for('share', { of: attachments });
          if (!acceptAvatar(candidate)) return { ok: false, reason: 'avatar-refused' };
        }
        const set: Partial<Pick<User, 'username' | 'avatar'>> = {};
        if (change.username !== undefined) set.username = change.username;
        if (change.avatar !== undefined) set.avatar = change.avatar;
        const [user] =
          Object.keys(set).length === 0
            ? await tx.select().from(users).where(eq(users.id, id))
            : await tx.update(users).set(set).where(eq(users.id, id)).returning();
        return user ? { ok: true, user } : { ok: false, reason: 'missing' };
      });
    } catch (error) {
      if (isUniqueViolation(error)) return { ok: false, reason: 'username-taken' };
      throw error;
    }
  }

  /**
   * Sets a new password hash only if the stored one is still `expected` (the one the caller just
   * verified): of two password changes at once, one wins and the other finds it changed.
   */
  async replacePasswordHash(id: string, expected: string, next: string): Promise<boolean> {
    const rows = await this.db
      .update(users)
      .set({ passwordHash: next })
      .where(and(eq(users.id, id), eq(users.passwordHash, expected)))
      .returning({ id: users.id });
    return rows.length > 0;
  }

  async touchLastActive(id: string, at = new Date()): Promise<void> {
    await this.db.update(users).set({ lastActiveAt: at }).where(eq(users.id, id));
  }

  /** The subset of `ids` that are existing users. */
  async existingIds(ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const rows = await this.db
      .select({ id: users.id })
      .from(users)
      .where(inArray(users.id, [...ids]));
    return rows.map((row) => row.id);
  }

  /** Public name and avatar of each of `ids` that exists. */
  async summaries(ids: readonly string[]): Promise<UserSummaryRow[]> {
    if (ids.length === 0) return [];
    return this.db
      .select({ id: users.id, username: users.username, avatar: users.avatar })
      .from(users)
      .where(inArray(users.id, [...ids]));
  }
}
