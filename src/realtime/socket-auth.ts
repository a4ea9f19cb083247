// The Socket.IO handshake: a bearer access token of a live session (SPEC §6), refused with the
// seed's connect_error texts. The socket's rooms are loaded here too, so it is in every room of
// its conversations before the first event can reach it.
import type { MembershipService } from '../services/membership.service.js';
import type { PresenceService } from '../services/presence.service.js';
import type { SessionService } from '../services/session.service.js';
import type { TokenService } from '../services/token.service.js';
import type { ParleySocket } from './types.js';
import type { UserSockets } from './user-sockets.js';

export const TOKEN_REQUIRED = 'Authentication token required';
export const AUTH_FAILED = 'Authentication failed';
export const TOO_MANY_SOCKETS = 'Too many connections for this user';

export const userRoom = (userId: string) => `user:${userId}`;
/** Sockets that said `auth: { seedEvents: false }`: they need no `message:received` alias. */
export const NO_SEED_EVENTS_ROOM = 'no-seed-events';
export const sessionRoom = (sessionId: string) => `session:${sessionId}`;
export const conversationRoom = (conversationId: string) => `conversation:${conversationId}`;

function tokenFrom(socket: ParleySocket): string | undefined {
  const auth = socket.handshake.auth as { token?: unknown } | undefined;
  if (typeof auth?.token === 'string' && auth.token) return auth.token.replace(/^Bearer\s+/i, '');
  const header = socket.handshake.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return match?.[1];
}

export function authenticateSocket(deps: {
  tokens: TokenService;
  sessions: SessionService;
  membership: MembershipService;
  /** Admits the socket against its user's cap; the gateway releases it on disconnect. */
  userSockets: UserSockets;
  /** The same cap across instances (the presence store counts every instance's sockets). */
  presence: PresenceService;
  maxSocketsPerUser: number;
}) {
  return async (socket: ParleySocket, next: (error?: Error) => void) => {
    const token = tokenFrom(socket);
    if (!token) return next(new Error(TOKEN_REQUIRED));
    try {
      const claims = deps.tokens.verifyAccess(token);
      const principal = await deps.sessions.authenticate(claims);
      if (!principal) return next(new Error(AUTH_FAILED));
      socket.data = {
        userId: principal.userId,
        sessionId: principal.sessionId,
        role: principal.role,
        expiresAt: claims.expiresAt,
      };
      const conversationIds = await deps.membership.conversationIdsOf(principal.userId);
      const optedOut =
        (socket.handshake.auth as { seedEvents?: unknown } | undefined)?.seedEvents === false;
      await socket.join([
        userRoom(principal.userId),
        sessionRoom(principal.sessionId),
        ...conversationIds.map(conversationRoom),
        ...(optedOut ? [NO_SEED_EVENTS_ROOM] : []),
      ]);
    } catch {
      return next(new Error(AUTH_FAILED));
    }
    // Counted last: a refused or failed handshake holds no place. A connection that closed during
    // an await is dropped by Socket.IO without a disconnect event (so without a release): it is
    // not counted, or, closed during the shared store's answer, its places are given back.
    if (socket.conn.readyState !== 'open') return next(new Error(AUTH_FAILED));
    const { userId } = socket.data;
    if (!deps.userSockets.admit(userId)) return next(new Error(TOO_MANY_SOCKETS));
    // Then across instances, in one atomic step in the shared store; the place is given back
    // when the connection closed meanwhile, or when the store could not answer.
    const admitted = await deps.presence
      .admit(userId, socket.id, deps.maxSocketsPerUser)
      .catch(() => undefined);
    if (admitted && socket.conn.readyState === 'open') return next();
    deps.userSockets.release(userId);
    if (admitted) void deps.presence.release(userId, socket.id).catch(() => undefined);
    next(new Error(admitted === false ? TOO_MANY_SOCKETS : AUTH_FAILED));
  };
}
