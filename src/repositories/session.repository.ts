// Login sessions and their refresh-token rotation history.
import { and, desc, eq, gt, isNull, ne } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import {
  rotatedRefreshTokens,
  userSessions,
  users,
  type NewUserSession,
  type UserRole,
  type UserSession,
} from '../db/schema.js';

/** What authenticating a request needs to know about its session. */
export interface SessionAuthState {
  id: string;
  userId: string;
  role: UserRole;
  expiresAt: Date;
  revokedAt: Date | null;
  lastUsedAt: Date;
}

export type RevokeReason = 'logout' | 'revoked' | 'reuse' | 'password-changed' | 'account-deleted';

export class SessionRepository {
  constructor(private readonly db: Db) {}

  /**
   * Creates a session only while its user exists with `passwordHash` as their password; undefined
   * otherwise. The user's row is share-locked first: a password change (or an account deletion)
   * that locked it before waits for this session, then revokes it (or deletes it); one that comes
   * after makes this find a different hash (or no user) and write nothing.
   */
  async createWhileCredentials(
    values: Pick<NewUserSession, 'userId' | 'token' | 'userAgent' | 'ipAddress' | 'expiresAt'>,
    passwordHash: string | null,
  ): Promise<UserSession | undefined> {
    return this.db.transaction(async (tx) => {
      const [user] = await tx
        .select({ id: users.id })
        .from(users)
        .where(
          and(
            eq(users.id, values.userId),
            passwordHash === null
              ? isNull(users.passwordHash)
              : eq(users.passwordHash, passwordHash),
          ),
        )
        .for('share');
      if (!user) return undefined;
      const [session] = await tx.insert(userSessions).values(values).returning();
      if (!session) throw new Error('INSERT … RETURNING returned no row');
      return session;
    });
  }

  async getAuthState(id: string): Promise<SessionAuthState | undefined> {
    const [row] = await this.db
      .select({
        id: userSessions.id,
        userId: userSessions.userId,
        role: users.role,
        expiresAt: userSessions.expiresAt,
        revokedAt: userSessions.revokedAt,
        lastUsedAt: userSessions.lastUsedAt,
      })
      .from(userSessions)
      .innerJoin(users, eq(users.id, userSessions.userId))
      .where(eq(userSessions.id, id))
      .limit(1);
    return row;
  }

  async getByTokenHash(tokenHash: string): Promise<UserSession | undefined> {
    const [row] = await this.db
      .select()
      .from(userSessions)
      .where(eq(userSessions.token, tokenHash))
      .limit(1);
    return row;
  }

  /** The session a rotated-away refresh token belonged to, if it is one. */
  async getSessionIdOfRotatedToken(tokenHash: string): Promise<string | undefined> {
    const [row] = await this.db
      .select({ sessionId: rotatedRefreshTokens.sessionId })
      .from(rotatedRefreshTokens)
      .where(eq(rotatedRefreshTokens.tokenHash, tokenHash))
      .limit(1);
    return row?.sessionId;
  }

  /**
   * Swaps the session's refresh token from `fromHash` to `toHash` and records the old one.
   * The compare-and-set on the current hash means two concurrent refreshes with the same
   * token cannot both succeed: the loser sees a rotated token, i.e. reuse.
   */
  async rotate(
    sessionId: string,
    fromHash: string,
    toHash: string,
    expiresAt: Date,
  ): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const now = new Date();
      const updated = await tx
        .update(userSessions)
        .set({ token: toHash, expiresAt, lastUsedAt: now })
        .where(
          and(
            eq(userSessions.id, sessionId),
            eq(userSessions.token, fromHash),
            isNull(userSessions.revokedAt),
          ),
        )
        .returning({ id: userSessions.id });
      if (updated.length === 0) return false;
      await tx
        .insert(rotatedRefreshTokens)
        .values({ tokenHash: fromHash, sessionId, rotatedAt: now });
      return true;
    });
  }

  /**
   * Revokes a live session (optionally only if it belongs to `userId`); returns its user's id,
   * or undefined when there was no such live session.
   */
  async revoke(id: string, reason: RevokeReason, userId?: string): Promise<string | undefined> {
    const rows = await this.db
      .update(userSessions)
      .set({ revokedAt: new Date(), revokedReason: reason })
      .where(
        and(
          eq(userSessions.id, id),
          isNull(userSessions.revokedAt),
          userId === undefined ? undefined : eq(userSessions.userId, userId),
        ),
      )
      .returning({ userId: userSessions.userId });
    return rows[0]?.userId;
  }

  /**
   * Revokes every session of `userId` not yet revoked (expired ones too), but `exceptId`; returns
   * those revoked, with when each would have expired.
   */
  async revokeAllOf(
    userId: string,
    reason: RevokeReason,
    exceptId?: string,
  ): Promise<Array<{ id: string; expiresAt: Date }>> {
    return this.db
      .update(userSessions)
      .set({ revokedAt: new Date(), revokedReason: reason })
      .where(
        and(
          eq(userSessions.userId, userId),
          isNull(userSessions.revokedAt),
          exceptId === undefined ? undefined : ne(userSessions.id, exceptId),
        ),
      )
      .returning({ id: userSessions.id, expiresAt: userSessions.expiresAt });
  }

  async listActiveByUser(userId: string, now = new Date()): Promise<UserSession[]> {
    return this.db
      .select()
      .from(userSessions)
      .where(
        and(
          eq(userSessions.userId, userId),
          isNull(userSessions.revokedAt),
          gt(userSessions.expiresAt, now),
        ),
      )
      .orderBy(desc(userSessions.lastUsedAt));
  }

  async touch(id: string, at = new Date()): Promise<void> {
    await this.db.update(userSessions).set({ lastUsedAt: at }).where(eq(userSessions.id, id));
  }
}
