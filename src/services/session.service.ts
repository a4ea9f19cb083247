// Sessions as seen by every authenticated request: is this session still alive? Answered from
// a short-lived cache so a request costs no database query, while revocation stays immediate.
import type { UserRole, UserSession } from '../db/schema.js';
import type { EventBus } from '../events/event-bus.js';
import type { Cache } from '../infra/cache.js';
import type { RevokeReason, SessionRepository } from '../repositories/session.repository.js';
import { notFound } from '../errors.js';
import type { AccessClaims } from './token.service.js';

/** The authenticated caller of a request or socket. */
export interface Principal {
  userId: string;
  sessionId: string;
  role: UserRole;
}

/** Cached per session; epoch milliseconds so it survives JSON (the Redis cache). */
type CachedSession =
  { state: 'active'; userId: string; role: UserRole; expiresAt: number } | { state: 'revoked' };

export interface SessionView {
  id: string;
  userAgent: string | null;
  ipAddress: string | null;
  createdAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
  current: boolean;
}

const CACHE_TTL_MS = 60_000;
const TOUCH_INTERVAL_MS = 5 * 60_000;

export class SessionService {
  constructor(
    private readonly sessions: SessionRepository,
    private readonly cache: Cache,
    private readonly events: EventBus,
    /** How long a revoked marker must outlive the last access token issued for the session. */
    private readonly accessTtlMs: number,
  ) {}

  /** The principal for verified access-token claims, or undefined when the session is dead. */
  async authenticate(claims: AccessClaims): Promise<Principal | undefined> {
    const key = cacheKey(claims.sid);
    let cached = await this.cache.get<CachedSession>(key);
    if (!cached) {
      const row = await this.sessions.getAuthState(claims.sid);
      cached =
        row && !row.revokedAt
          ? {
              state: 'active',
              userId: row.userId,
              role: row.role,
              expiresAt: row.expiresAt.getTime(),
            }
          : { state: 'revoked' };
      // add, not set: if a revocation wrote its marker meanwhile, the marker must win.
      await this.cache.add(key, cached, CACHE_TTL_MS);
    }
    if (cached.state !== 'active' || cached.userId !== claims.userId) return undefined;
    if (cached.expiresAt <= Date.now()) return undefined;
    if (await this.cache.add(`session-touch:${claims.sid}`, 1, TOUCH_INTERVAL_MS)) {
      await this.sessions.touch(claims.sid);
    }
    // The role comes from the database (through the cache), so a demotion applies within a minute.
    return { userId: cached.userId, sessionId: claims.sid, role: cached.role };
  }

  async list(principal: Principal): Promise<SessionView[]> {
    const rows = await this.sessions.listActiveByUser(principal.userId);
    return rows.map((row) => toSessionView(row, principal.sessionId));
  }

  /** Revokes one of the caller's own sessions; someone else's id is simply not found. */
  async revokeOwn(principal: Principal, sessionId: string): Promise<void> {
    const revoked = await this.revoke(sessionId, 'revoked', principal.userId);
    if (!revoked) throw notFound('Session');
  }

  /** Revokes a live session (only `userId`'s when given); false when there was none. */
  async revoke(sessionId: string, reason: RevokeReason, userId?: string): Promise<boolean> {
    const ownerId = await this.sessions.revoke(sessionId, reason, userId);
    if (ownerId === undefined) return false;
    await this.announce(sessionId, ownerId, reason);
    return true;
  }

  /**
   * Revokes every session of a user but `exceptSessionId` (password change: all but the caller's;
   * account deletion: all); returns how many were live. Each ends at once on REST and sockets.
   */
  async revokeAllOf(
    userId: string,
    reason: RevokeReason,
    exceptSessionId?: string,
  ): Promise<number> {
    const revoked = await this.sessions.revokeAllOf(userId, reason, exceptSessionId);
    const now = Date.now();
    // An expired session's access tokens are refused anyway (the cached expiry); the live ones
    // need the marker and their sockets closed.
    const live = revoked.filter((session) => session.expiresAt.getTime() > now);
    await Promise.all(live.map((session) => this.announce(session.id, userId, reason)));
    return live.length;
  }

  /** The revoked marker (so the cache never answers "active" again), then the event. */
  private async announce(sessionId: string, userId: string, reason: RevokeReason): Promise<void> {
    await this.cache.set(
      cacheKey(sessionId),
      { state: 'revoked' } satisfies CachedSession,
      this.accessTtlMs,
    );
    this.events.publish('session.revoked', { sessionId, userId, reason });
  }
}

const cacheKey = (sessionId: string) => `session:${sessionId}`;

function toSessionView(row: UserSession, currentSessionId: string): SessionView {
  return {
    id: row.id,
    userAgent: row.userAgent,
    ipAddress: row.ipAddress,
    createdAt: row.createdAt,
    lastUsedAt: row.lastUsedAt,
    expiresAt: row.expiresAt,
    current: row.id === currentSessionId,
  };
}
