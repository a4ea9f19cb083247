// Turns the generation log into socket events: an answer's start, end and errors to its
// conversation's room, its deltas to the answer's own room (the sockets that follow it live).
// It also remembers which answers of a conversation are running here, so a participant who
// leaves stops hearing them at once.
import { isTerminal, type GenerationEvent, type GenerationLog } from '../ai/generation-log.js';
import type { EventBus } from '../events/event-bus.js';
import type { Metrics } from '../infra/metrics.js';
import type { ParleyServer } from './types.js';
import { AI_USER_ID } from './events.js';
import { generationRoom, resumedRoom, toSocketEvents } from './generation-events.js';
import { conversationRoom, userRoom } from './socket-auth.js';

/** The rooms of the answers running in each conversation. */
export class GenerationRooms {
  private readonly byConversation = new Map<string, Set<string>>();

  add(conversationId: string, generationId: string): void {
    const running = this.byConversation.get(conversationId);
    if (running) running.add(generationId);
    else this.byConversation.set(conversationId, new Set([generationId]));
  }

  remove(conversationId: string, generationId: string): void {
    const running = this.byConversation.get(conversationId);
    running?.delete(generationId);
    if (running?.size === 0) this.byConversation.delete(conversationId);
  }

  /** Rooms of the answers running in a conversation now. */
  of(conversationId: string): string[] {
    return [...(this.byConversation.get(conversationId) ?? [])].map(generationRoom);
  }
}

/**
 * Each process follows the answers of the conversations its own sockets are in, and emits their
 * events to those sockets only (`io.local`): a delta crosses Redis once per process that needs
 * it, never once per process per emit.
 */
export function bridgeGenerationLog(
  io: ParleyServer,
  events: EventBus,
  log: GenerationLog,
  rooms: GenerationRooms,
  metrics: Metrics,
): () => void {
  const now = () => new Date().toISOString();
  const emit = (to: string[], name: string, payload: unknown, except: string[] = []) => {
    metrics.socketEventsOut.inc({ event: name });
    (io.local.to(to).except(except).emit as (event: string, payload: unknown) => boolean)(
      name,
      payload,
    );
  };
  const following = new Map<string, () => void>();
  const relay = (event: GenerationEvent, conversationId: string) => {
    if (event.type === 'start') {
      emit([conversationRoom(conversationId)], 'typing:start', {
        conversationId,
        userId: AI_USER_ID,
        timestamp: now(),
      });
    }
    const to =
      event.type === 'delta'
        ? [generationRoom(event.generationId)]
        : [conversationRoom(conversationId), generationRoom(event.generationId)];
    // A socket that resumed the answer gets its events from its own follow (handlers.ts): from
    // the conversation's broadcast too, its end would arrive twice.
    const resumed = [resumedRoom(event.generationId)];
    for (const [name, payload] of toSocketEvents(event)) emit(to, name, payload, resumed);
    if (isTerminal(event)) {
      rooms.remove(conversationId, event.generationId);
      following.get(event.generationId)?.();
      following.delete(event.generationId);
      emit([conversationRoom(conversationId)], 'typing:stop', {
        conversationId,
        userId: AI_USER_ID,
        timestamp: now(),
      });
      io.local
        .in(generationRoom(event.generationId))
        .socketsLeave(generationRoom(event.generationId));
      io.local.in(resumed).socketsLeave(resumed);
    }
  };
  const subscriptions = [
    events.subscribeEverywhere('generation.started', async ({ generationId, conversationId }) => {
      // Nobody here to tell: another process's sockets follow it from there.
      if (!hasLocalSockets(io, conversationRoom(conversationId))) return;
      rooms.add(conversationId, generationId);
      // Sockets in the conversation now follow the generation; a socket that connects later
      // follows it with generation:resume, which replays what it missed first.
      io.local.in(conversationRoom(conversationId)).socketsJoin(generationRoom(generationId));
      let ended = false;
      const unfollow = await log.follow(generationId, -1, (event) => {
        if (isTerminal(event)) ended = true;
        relay(event, conversationId);
      });
      if (unfollow && !ended) following.set(generationId, unfollow);
    }),
    // Whoever leaves a conversation stops hearing its answers at once, on every process.
    events.subscribeEverywhere('participant.removed', ({ conversationId, userId }) => {
      const answers = rooms.of(conversationId);
      if (answers.length) io.local.in(userRoom(userId)).socketsLeave(answers);
    }),
    events.subscribeEverywhere('conversation.deleted', ({ conversationId }) => {
      for (const room of rooms.of(conversationId)) io.local.in(room).socketsLeave(room);
    }),
  ];
  return () => {
    subscriptions.forEach((unsubscribe) => unsubscribe());
    for (const unfollow of following.values()) unfollow();
    following.clear();
  };
}

/** Whether any socket of this process is in the room (the adapter's own, local, room table). */
function hasLocalSockets(io: ParleyServer, room: string): boolean {
  return (io.of('/').adapter.rooms.get(room)?.size ?? 0) > 0;
}
