// Users: lookups by id and email, creation with the unique constraints reported by name.
import { eq, inArray } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { isUniqueViolation } from '../db/errors.js';
import { users, type NewUser, type User } from '../db/schema.js';

export interface UserSummaryRow {
  id: string;
  username: string | null;
  avatar: string | null;
}

export type CreateUserResult =
  { ok: true; user: User } | { ok: false; taken: 'email' | 'username' };

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
