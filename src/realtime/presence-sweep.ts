// The timers that make presence survive a crashed instance: each process keeps its own sockets
// alive in the presence store, and sweeps for users whose sockets nobody kept alive. Every
// instance sweeps; the store hands each such user to one of them, which tells their
// conversations through the adapter, so each offline is told once.
import type { Container } from '../container.js';
import { describeError } from '../utils/logger.js';
import { conversationRoom, userRoom } from './socket-auth.js';
import type { ParleyServer } from './types.js';

export interface PresenceTimerOptions {
  /** How often this process refreshes its sockets; a third of the TTL leaves two beats to miss. */
  heartbeatMs?: number;
  /** How often this process sweeps, on average: each wait is drawn from ±25% of it. */
  sweepMs?: number;
}

/** Starts both timers; the returned function stops them and waits for a round in progress. */
export function startPresenceTimers(
  io: ParleyServer,
  container: Container,
  options: PresenceTimerOptions = {},
): () => Promise<void> {
  const { heartbeatMs = 20_000, sweepMs = 10_000 } = options;
  const { presence, logger } = container;

  const heartbeat = repeat(
    () => heartbeatMs,
    async () => {
      // Listed and sent in one turn: a socket that disconnects after this is removed after it.
      const sockets = [...io.of('/').sockets.values()].map((socket) => ({
        userId: socket.data.userId,
        socketId: socket.id,
      }));
      const back = await presence.heartbeat(sockets);
      await tellAll(io, container, back, 'user:online');
    },
    (error) => logger.warn('Presence heartbeat failed', describeError(error)),
  );
  // Jittered so the instances do not all sweep at the same moment.
  const sweep = repeat(
    () => sweepMs * (0.75 + Math.random() * 0.5),
    async () => {
      const gone = await presence.sweepOffline();
      await tellAll(io, container, gone, 'user:offline');
    },
    (error) => logger.warn('Presence sweep failed', describeError(error)),
  );
  return async () => {
    await Promise.all([heartbeat(), sweep()]);
  };
}

/**
 * Runs `round` after each delay, never two at once (a slow Redis delays the next round instead
 * of piling rounds up). Returns the stop function.
 */
function repeat(
  delay: () => number,
  round: () => Promise<void>,
  onError: (error: unknown) => void,
): () => Promise<void> {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout;
  const schedule = () => {
    timer = setTimeout(() => {
      running = round()
        .catch(onError)
        .finally(() => {
          if (!stopped) schedule();
        });
    }, delay());
    timer.unref();
  };
  schedule();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}

/** Tells the conversations of each user (except the user's own sockets) that they came or went. */
async function tellAll(
  io: ParleyServer,
  { membership, metrics, logger }: Container,
  userIds: readonly string[],
  event: 'user:online' | 'user:offline',
): Promise<void> {
  await Promise.all(
    userIds.map(async (userId) => {
      try {
        const rooms = (await membership.conversationIdsOf(userId)).map(conversationRoom);
        // `io.to([])` is not "nobody" but "every socket".
        if (rooms.length === 0) return;
        metrics.socketEventsOut.inc({ event });
        io.to(rooms)
          .except(userRoom(userId))
          .emit(event, { userId, timestamp: new Date().toISOString() });
      } catch (error) {
        logger.warn(`Presence: ${event} not told`, { userId, ...describeError(error) });
      }
    }),
  );
}
