// The Socket.IO gateway on the HTTP server: the handshake, each connection's life
// (connection.ts), and the bridges from domain events and the generation log to rooms.
import type { Server as HttpServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { Server } from 'socket.io';
import type { Container } from '../container.js';
import { bridgeDomainEvents } from './broadcaster.js';
import { createRoomEmitter } from './large-emit.js';
import { onConnection } from './connection.js';
import { bridgeGenerationLog, GenerationRooms } from './generation-bridge.js';
import { authenticateSocket, conversationRoom, userRoom } from './socket-auth.js';
import type { ParleyServer } from './types.js';
import { startPresenceTimers } from './presence-sweep.js';
import { TypingTracker } from './typing.js';
import { UserSockets } from './user-sockets.js';

export interface RealtimeGateway {
  io: ParleyServer;
  /** Disconnects every socket and detaches from the HTTP server. */
  close(): Promise<void>;
}

export function createRealtimeGateway(
  httpServer: HttpServer,
  container: Container,
): RealtimeGateway {
  const { config, metrics } = container;
  const io: ParleyServer = new Server(httpServer, {
    cors: { origin: config.FRONTEND_URL, credentials: true },
    // A message body's worth (32,000 characters plus metadata), the REST body limit's size;
    // more closes the connection.
    maxHttpBufferSize: 256 * 1024,
    serveClient: false,
  });
  // Scale-out: room emits reach every instance's sockets through Redis pub/sub (the classic
  // adapter: a broadcast is one PUBLISH, nothing is stored; docs/deployment.md says why not the
  // streams adapter). Its own two connections: the subscriber one is in subscribe mode.
  if (container.redis) {
    const { pub, sub } = container.redis.adapterClients();
    io.adapter(createAdapter(pub, sub));
  }
  const typing = new TypingTracker((conversationId, userId) => {
    io.to(conversationRoom(conversationId))
      .except(userRoom(userId))
      .emit('typing:stop', { conversationId, userId, timestamp: new Date().toISOString() });
  });
  const userSockets = new UserSockets(config.SOCKETS_MAX_PER_USER);

  // Presence writes still running when the gateway closes are waited for, so the database is
  // not closed under them.
  const pending = new Set<Promise<unknown>>();
  const track = (work: Promise<unknown>) => {
    pending.add(work);
    void work.finally(() => pending.delete(work));
  };

  io.use(
    authenticateSocket({
      ...container,
      userSockets,
      maxSocketsPerUser: config.SOCKETS_MAX_PER_USER,
    }),
  );
  io.on('connection', (socket) =>
    onConnection(socket, { io, container, typing, userSockets, track }),
  );

  // Presence with a TTL: this instance's sockets are refreshed, a dead instance's users swept.
  const stopPresence = startPresenceTimers(io, container);
  const generationRooms = new GenerationRooms();
  const unbridge = bridgeDomainEvents(
    io,
    container.events,
    metrics,
    createRoomEmitter(io, container.redis?.command, container.logger),
  );
  const unfollow = bridgeGenerationLog(
    io,
    container.events,
    container.generationLog,
    generationRooms,
    metrics,
  );
  return {
    io,
    close: async () => {
      await stopPresence();
      unbridge();
      unfollow();
      typing.clear();
      await io.close();
      await Promise.allSettled([...pending]);
    },
  };
}
