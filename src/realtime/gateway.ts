// The Socket.IO gateway on the HTTP server: handshake, per-connection throttle, presence,
// typing, token expiry, and the bridge from domain events to rooms.
import type { Server as HttpServer } from 'node:http';
import { Server } from 'socket.io';
import type { Container } from '../container.js';
import { describeError } from '../utils/logger.js';
import { bridgeDomainEvents, type ParleyServer } from './broadcaster.js';
import { AI_USER_ID, CLIENT_EVENTS } from './events.js';
import { generationRoom, toSocketEvents } from './generation-events.js';
import { registerClientEvents, reply, type AckFn } from './handlers.js';
import {
  authenticateSocket,
  conversationRoom,
  userRoom,
  type ParleySocket,
} from './socket-auth.js';
import { EventThrottle } from './throttle.js';
import { TypingTracker } from './typing.js';

export interface RealtimeGateway {
  io: ParleyServer;
  /** Disconnects every socket and detaches from the HTTP server. */
  close(): Promise<void>;
}

const KNOWN_EVENTS = new Set<string>(CLIENT_EVENTS);
/** setTimeout's ceiling; a token living longer is re-armed when this fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function createRealtimeGateway(
  httpServer: HttpServer,
  container: Container,
): RealtimeGateway {
  const { config, logger, metrics } = container;
  const io: ParleyServer = new Server(httpServer, {
    cors: { origin: config.FRONTEND_URL, credentials: true },
    // A message body's worth (32,000 characters plus metadata); more closes the connection.
    maxHttpBufferSize: 256 * 1024,
    serveClient: false,
  });
  const now = () => new Date().toISOString();
  /**
   * Tells everyone in these conversations that a user came or went: exactly the people who share
   * a conversation with them, in one broadcast (Socket.IO sends each socket one copy however many
   * of the rooms it is in). Guarded: `io.to([])` is not "nobody" but "every socket".
   */
  const tellPresence = (rooms: string[], event: 'user:online' | 'user:offline', userId: string) => {
    if (rooms.length === 0) return;
    metrics.socketEventsOut.inc({ event });
    io.to(rooms).except(userRoom(userId)).emit(event, { userId, timestamp: now() });
  };
  const conversationRoomsOf = (socket: ParleySocket) =>
    [...socket.rooms].filter((room) => room.startsWith('conversation:'));

  const typing = new TypingTracker((conversationId, userId) => {
    io.to(conversationRoom(conversationId))
      .except(userRoom(userId))
      .emit('typing:stop', { conversationId, userId, timestamp: now() });
  });

  // Presence writes still running when the gateway closes are waited for, so the database is
  // not closed under them.
  const pending = new Set<Promise<unknown>>();
  const track = (work: Promise<unknown>) => {
    pending.add(work);
    void work.finally(() => pending.delete(work));
  };

  io.use(authenticateSocket(container));

  io.on('connection', (socket: ParleySocket) => {
    const { userId } = socket.data;
    metrics.socketsConnected.inc();
    const throttle = new EventThrottle();
    const typingIn = new Set<string>();
    let lastRateLimitNotice = 0;
    let cutOff = false;

    // Every incoming event passes here first: counted, throttled, unknown names dropped.
    socket.use(([event, ...args]: [string, ...unknown[]], next) => {
      const known = KNOWN_EVENTS.has(event);
      metrics.socketEventsIn.inc({ event: known ? event : 'unknown' });
      const last: unknown = args.at(-1);
      const ack = typeof last === 'function' ? (last as AckFn) : undefined;
      if (cutOff) return; // packets already read from a flooder's connection
      const verdict = throttle.take();
      if (verdict === 'disconnect') {
        cutOff = true;
        logger.warn('Socket flooding: disconnected', { userId, socketId: socket.id });
        socket.disconnect(true);
        return;
      }
      if (verdict === 'drop') {
        // Tell the client, but not once per dropped event: that would be a flood of our own.
        if (ack)
          reply(socket, ack, {
            code: 'RATE_LIMITED',
            message: 'Too many events; slow down',
            event,
          });
        else if (Date.now() - lastRateLimitNotice > 1000) {
          lastRateLimitNotice = Date.now();
          socket.emit('error', {
            code: 'RATE_LIMITED',
            message: 'Too many events; slow down',
            event,
          });
        }
        return;
      }
      if (!known) {
        if (ack)
          reply(socket, ack, {
            code: 'VALIDATION_ERROR',
            message: `Unknown event ${String(event)}`,
          });
        return;
      }
      next();
    });

    let expiry: NodeJS.Timeout | undefined;
    const rescheduleExpiry = () => {
      clearTimeout(expiry);
      const remaining = socket.data.expiresAt - Date.now();
      expiry = setTimeout(
        () => {
          if (socket.data.expiresAt > Date.now()) return rescheduleExpiry();
          socket.emit('auth:expired', {
            message: 'Access token expired; reconnect with a fresh token',
          });
          socket.disconnect(true);
        },
        Math.max(0, Math.min(remaining, MAX_TIMER_MS)),
      );
      expiry.unref();
    };
    rescheduleExpiry();

    registerClientEvents(socket, container, { typing, typingIn, rescheduleExpiry });

    track(
      container.presence
        .connected(userId, socket.id)
        .then((cameOnline) => {
          if (cameOnline) tellPresence(conversationRoomsOf(socket), 'user:online', userId);
        })
        .catch((error: unknown) => logger.error('Presence update failed', describeError(error))),
    );

    // Rooms are still known while disconnecting; by `disconnect` they are gone.
    let lastRooms: string[] = [];
    socket.on('disconnecting', () => {
      lastRooms = conversationRoomsOf(socket);
    });

    socket.on('disconnect', () => {
      metrics.socketsConnected.dec();
      clearTimeout(expiry);
      for (const conversationId of typingIn) {
        if (typing.stop(conversationId, userId)) {
          io.to(conversationRoom(conversationId))
            .except(userRoom(userId))
            .emit('typing:stop', { conversationId, userId, timestamp: now() });
        }
      }
      track(
        container.presence
          .disconnected(userId, socket.id)
          .then((wentOffline) => {
            if (wentOffline) tellPresence(lastRooms, 'user:offline', userId);
          })
          .catch((error: unknown) => logger.error('Presence update failed', describeError(error))),
      );
    });
  });

  const unbridge = bridgeDomainEvents(io, container.events, metrics);
  const unfollow = container.generationLog.onEvent((event) => {
    const emit = (rooms: string[], name: string, payload: unknown) => {
      metrics.socketEventsOut.inc({ event: name });
      (io.to(rooms).emit as (event: string, payload: unknown) => boolean)(name, payload);
    };
    if (event.type === 'start') {
      // Sockets in the conversation now follow the generation; a socket that connects later
      // follows it with generation:resume, which replays what it missed first.
      io.in(conversationRoom(event.conversationId)).socketsJoin(generationRoom(event.generationId));
      emit([conversationRoom(event.conversationId)], 'typing:start', {
        conversationId: event.conversationId,
        userId: AI_USER_ID,
        timestamp: now(),
      });
    }
    const rooms =
      event.type === 'delta'
        ? [generationRoom(event.generationId)]
        : [conversationRoom(event.conversationId), generationRoom(event.generationId)];
    for (const [name, payload] of toSocketEvents(event)) emit(rooms, name, payload);
    if (event.type === 'end' || event.type === 'error') {
      emit([conversationRoom(event.conversationId)], 'typing:stop', {
        conversationId: event.conversationId,
        userId: AI_USER_ID,
        timestamp: now(),
      });
      io.in(generationRoom(event.generationId)).socketsLeave(generationRoom(event.generationId));
    }
  });
  return {
    io,
    close: async () => {
      unbridge();
      unfollow();
      typing.clear();
      await io.close();
      await Promise.allSettled([...pending]);
    },
  };
}
