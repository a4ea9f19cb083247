// Turns domain events into Socket.IO emits. Every server event starts here, whether the change
// came from REST or a socket, so both produce the same broadcasts; with the Redis adapter the
// same code reaches every instance.
import type { DomainEvents, EventBus } from '../events/event-bus.js';
import type { Metrics } from '../infra/metrics.js';
import type { MessageView } from '../schemas/message.schemas.js';
import type { ServerToClientEvents } from './events.js';
import type { RoomEmitter } from './large-emit.js';
import { conversationRoom, NO_SEED_EVENTS_ROOM, sessionRoom, userRoom } from './socket-auth.js';
import type { ParleyServer } from './types.js';

export function bridgeDomainEvents(
  io: ParleyServer,
  events: EventBus,
  metrics: Metrics,
  /** Room emits of any size (large ones cross the cluster through Redis keys). */
  emitter: RoomEmitter,
): () => void {
  const now = () => new Date().toISOString();
  /** Emits to rooms and counts it: one emit is one event out, whatever the audience. */
  const send = <E extends keyof ServerToClientEvents>(
    rooms: string | string[],
    event: E,
    ...payload: Parameters<ServerToClientEvents[E]>
  ) => {
    // `io.to([])` means every socket, not none.
    if (Array.isArray(rooms) && rooms.length === 0) return;
    metrics.socketEventsOut.inc({ event });
    io.to(rooms).emit(event, ...payload);
  };

  const subscriptions = [
    events.subscribe('message.created', ({ conversationId, message }) => {
      const room = conversationRoom(conversationId);
      const size = sizeBound(message);
      metrics.socketEventsOut.inc({ event: 'message:new' });
      emitter.emit({ rooms: room }, 'message:new', { conversationId, message }, size);
      // The seed's alias doubles every message's frames; clients that do not need it say so.
      metrics.socketEventsOut.inc({ event: 'message:received' });
      emitter.emit(
        { rooms: room, except: NO_SEED_EVENTS_ROOM },
        'message:received',
        { conversationId, message },
        size,
      );
    }),
    events.subscribe('message.updated', ({ conversationId, message }) => {
      metrics.socketEventsOut.inc({ event: 'message:updated' });
      emitter.emit(
        { rooms: conversationRoom(conversationId) },
        'message:updated',
        { conversationId, message },
        sizeBound(message),
      );
    }),
    events.subscribe('message.deleted', ({ conversationId, messageId }) =>
      send(conversationRoom(conversationId), 'message:deleted', { conversationId, messageId }),
    ),
    events.subscribe('branch.switched', (change) => {
      metrics.socketEventsOut.inc({ event: 'branch:switched' });
      // Ids only, but a large subtree's can pass what Redis pub/sub should carry.
      const size = (change.active.length + change.superseded.length) * 40 + 512;
      emitter.emit(
        { rooms: conversationRoom(change.conversationId) },
        'branch:switched',
        change,
        size,
      );
    }),
    events.subscribe('reaction.added', (e) =>
      send(conversationRoom(e.conversationId), 'message:reaction:added', reactionPayload(e)),
    ),
    events.subscribe('reaction.removed', (e) =>
      send(conversationRoom(e.conversationId), 'message:reaction:removed', reactionPayload(e)),
    ),
    events.subscribe('conversation.read', (receipt) =>
      send(conversationRoom(receipt.conversationId), 'conversation:read', {
        ...receipt,
        readAt: receipt.lastReadAt,
      }),
    ),
    events.subscribe('conversation.created', ({ conversationId, participantIds, by }) => {
      // Sockets of the new participants join the room at once, on every instance.
      const rooms = participantIds.map(userRoom);
      if (rooms.length) io.in(rooms).socketsJoin(conversationRoom(conversationId));
      send(rooms, 'conversation:created', { conversationId, by });
    }),
    events.subscribe('conversation.updated', ({ conversationId, changes, by }) =>
      send(conversationRoom(conversationId), 'conversation:updated', {
        conversationId,
        changes,
        by,
      }),
    ),
    events.subscribe('conversation.deleted', ({ conversationId, by }) => {
      send(conversationRoom(conversationId), 'conversation:deleted', { conversationId, by });
      // Nothing of it reaches anyone from now on: not its room, nor its running answers (their
      // rooms are left in every process by generation-bridge.ts; the generation service stops
      // them).
      io.in(conversationRoom(conversationId)).socketsLeave(conversationRoom(conversationId));
    }),
    events.subscribe('participant.added', ({ conversationId, userId, role }) => {
      io.in(userRoom(userId)).socketsJoin(conversationRoom(conversationId));
      send(conversationRoom(conversationId), 'user:joined', {
        conversationId,
        userId,
        role,
        timestamp: now(),
      });
    }),
    events.subscribe('participant.removed', ({ conversationId, userId, reason }) => {
      // Told first (so the one removed hears it too), then out of the room at once.
      send(conversationRoom(conversationId), 'user:left', {
        conversationId,
        userId,
        reason,
        timestamp: now(),
      });
      // (The answers' rooms are left in every process by generation-bridge.ts.)
      io.in(userRoom(userId)).socketsLeave(conversationRoom(conversationId));
    }),
    events.subscribe('ownership.transferred', ({ conversationId, ownerId, by }) =>
      send(conversationRoom(conversationId), 'conversation:updated', {
        conversationId,
        changes: ['owner'],
        by,
        ownerId,
      }),
    ),
    events.subscribe('session.revoked', ({ sessionId }) => {
      io.in(sessionRoom(sessionId)).disconnectSockets(true);
    }),
  ];
  return () => subscriptions.forEach((unsubscribe) => unsubscribe());
}

/**
 * An upper bound of a message event's size in bytes, without serialising it: 4 bytes a UTF-16
 * unit covers any text escaped as JSON writes it; metadata, rare, is measured when present.
 */
function sizeBound(message: MessageView): number {
  const metadata = message.metadata ? JSON.stringify(message.metadata).length * 6 : 0;
  return (message.content?.length ?? 0) * 6 + metadata + 4_096;
}

const reactionPayload = (e: DomainEvents['reaction.added']) => ({
  conversationId: e.conversationId,
  messageId: e.messageId,
  userId: e.userId,
  emoji: e.emoji,
});
