// One socket's life after its handshake: every event through the user's budget, the client
// events, presence when it comes and goes, typing it leaves behind, and the disconnect when its
// access token runs out.
import type { Container } from '../container.js';
import { describeError } from '../utils/logger.js';
import { CLIENT_EVENTS } from './events.js';
import { registerClientEvents, reply, type AckFn } from './handlers.js';
import { conversationRoom, userRoom } from './socket-auth.js';
import type { ParleyServer, ParleySocket } from './types.js';
import type { TypingTracker } from './typing.js';
import type { UserSockets } from './user-sockets.js';

const KNOWN_EVENTS = new Set<string>(CLIENT_EVENTS);
/** setTimeout's ceiling; a token living longer is re-armed when this fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface ConnectionContext {
  io: ParleyServer;
  container: Container;
  typing: TypingTracker;
  userSockets: UserSockets;
  /** Work to wait for before the gateway closes (presence writes). */
  track: (work: Promise<unknown>) => void;
}

const now = () => new Date().toISOString();

const conversationRoomsOf = (socket: ParleySocket) =>
  [...socket.rooms].filter((room) => room.startsWith('conversation:'));

export function onConnection(socket: ParleySocket, context: ConnectionContext): void {
  const { container, typing, userSockets, track } = context;
  const { userId } = socket.data;
  container.metrics.socketsConnected.inc();
  const typingIn = new Set<string>();
  guardEvents(socket, context);
  const rescheduleExpiry = expireWithToken(socket);
  const followed = new Map<string, () => void>();
  registerClientEvents(socket, container, { typing, typingIn, rescheduleExpiry, followed });

  track(
    container.presence
      .connected(userId, socket.id)
      .then((cameOnline) => {
        if (cameOnline) tellPresence(context, conversationRoomsOf(socket), 'user:online', userId);
      })
      .catch((error: unknown) =>
        container.logger.error('Presence update failed', describeError(error)),
      ),
  );

  // Rooms are still known while disconnecting; by `disconnect` they are gone.
  let lastRooms: string[] = [];
  socket.on('disconnecting', () => {
    lastRooms = conversationRoomsOf(socket);
  });
  socket.on('disconnect', () => {
    container.metrics.socketsConnected.dec();
    userSockets.release(userId);
    rescheduleExpiry.cancel();
    for (const unfollow of followed.values()) unfollow();
    followed.clear();
    for (const conversationId of typingIn) {
      if (typing.stop(conversationId, userId)) {
        context.io
          .to(conversationRoom(conversationId))
          .except(userRoom(userId))
          .emit('typing:stop', { conversationId, userId, timestamp: now() });
      }
    }
    track(
      container.presence
        .disconnected(userId, socket.id)
        .then((wentOffline) => {
          if (wentOffline) tellPresence(context, lastRooms, 'user:offline', userId);
        })
        .catch((error: unknown) =>
          container.logger.error('Presence update failed', describeError(error)),
        ),
    );
  });
}

/**
 * Every incoming event passes here first: counted, charged to the user's budget (shared by all
 * of the user's sockets), unknown names refused. Past the budget events are dropped with
 * RATE_LIMITED; a socket that keeps flooding is cut off.
 */
function guardEvents(socket: ParleySocket, { container, userSockets }: ConnectionContext) {
  const { userId } = socket.data;
  let lastRateLimitNotice = 0;
  let cutOff = false;
  socket.use(([event, ...args]: [string, ...unknown[]], next) => {
    const known = KNOWN_EVENTS.has(event);
    container.metrics.socketEventsIn.inc({ event: known ? event : 'unknown' });
    const last: unknown = args.at(-1);
    const ack = typeof last === 'function' ? (last as AckFn) : undefined;
    if (cutOff) return; // packets already read from a flooder's connection
    const verdict = userSockets.take(userId);
    if (verdict === 'disconnect') {
      cutOff = true;
      container.logger.warn('Socket flooding: disconnected', { userId, socketId: socket.id });
      socket.disconnect(true);
      return;
    }
    if (verdict === 'drop') {
      // Tell the client, but not once per dropped event: that would be a flood of our own.
      const notice = {
        code: 'RATE_LIMITED',
        message: 'Too many events; slow down',
        event,
      } as const;
      if (ack) reply(socket, ack, notice);
      else if (Date.now() - lastRateLimitNotice > 1000) {
        lastRateLimitNotice = Date.now();
        socket.emit('error', notice);
      }
      return;
    }
    if (!known) {
      if (ack)
        reply(socket, ack, { code: 'VALIDATION_ERROR', message: `Unknown event ${String(event)}` });
      return;
    }
    next();
  });
}

/** Disconnects the socket when its access token expires; auth:refresh re-arms it. */
function expireWithToken(socket: ParleySocket): (() => void) & { cancel: () => void } {
  let expiry: NodeJS.Timeout | undefined;
  const reschedule = () => {
    clearTimeout(expiry);
    const remaining = socket.data.expiresAt - Date.now();
    expiry = setTimeout(
      () => {
        if (socket.data.expiresAt > Date.now()) return reschedule();
        socket.emit('auth:expired', {
          message: 'Access token expired; reconnect with a fresh token',
        });
        socket.disconnect(true);
      },
      Math.max(0, Math.min(remaining, MAX_TIMER_MS)),
    );
    expiry.unref();
  };
  reschedule();
  return Object.assign(reschedule, { cancel: () => clearTimeout(expiry) });
}

/**
 * Tells everyone in these conversations that a user came or went: exactly the people who share
 * a conversation with them, in one broadcast (Socket.IO sends each socket one copy however many
 * of the rooms it is in). Guarded: `io.to([])` is not "nobody" but "every socket".
 */
function tellPresence(
  { io, container }: ConnectionContext,
  rooms: string[],
  event: 'user:online' | 'user:offline',
  userId: string,
) {
  if (rooms.length === 0) return;
  container.metrics.socketEventsOut.inc({ event });
  io.to(rooms).except(userRoom(userId)).emit(event, { userId, timestamp: now() });
}
