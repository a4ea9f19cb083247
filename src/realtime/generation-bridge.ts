// Turns the generation log into socket events: an answer's start, end and errors to its
// conversation's room, its deltas to the answer's own room (the sockets that follow it, live or
// after generation:resume). It also remembers which answers of a conversation are running, so a
// participant who leaves stops hearing them at once (broadcaster.ts).
import type { GenerationLog } from '../ai/generation-log.js';
import type { Metrics } from '../infra/metrics.js';
import type { ParleyServer } from './types.js';
import { AI_USER_ID } from './events.js';
import { generationRoom, toSocketEvents } from './generation-events.js';
import { conversationRoom } from './socket-auth.js';

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

export function bridgeGenerationLog(
  io: ParleyServer,
  log: GenerationLog,
  rooms: GenerationRooms,
  metrics: Metrics,
): () => void {
  const now = () => new Date().toISOString();
  const emit = (to: string[], name: string, payload: unknown) => {
    metrics.socketEventsOut.inc({ event: name });
    (io.to(to).emit as (event: string, payload: unknown) => boolean)(name, payload);
  };
  return log.onEvent((event) => {
    if (event.type === 'start') {
      rooms.add(event.conversationId, event.generationId);
      // Sockets in the conversation now follow the generation; a socket that connects later
      // follows it with generation:resume, which replays what it missed first.
      io.in(conversationRoom(event.conversationId)).socketsJoin(generationRoom(event.generationId));
      emit([conversationRoom(event.conversationId)], 'typing:start', {
        conversationId: event.conversationId,
        userId: AI_USER_ID,
        timestamp: now(),
      });
    }
    const to =
      event.type === 'delta'
        ? [generationRoom(event.generationId)]
        : [conversationRoom(event.conversationId), generationRoom(event.generationId)];
    for (const [name, payload] of toSocketEvents(event)) emit(to, name, payload);
    if (event.type === 'end' || event.type === 'error') {
      rooms.remove(event.conversationId, event.generationId);
      emit([conversationRoom(event.conversationId)], 'typing:stop', {
        conversationId: event.conversationId,
        userId: AI_USER_ID,
        timestamp: now(),
      });
      io.in(generationRoom(event.generationId)).socketsLeave(generationRoom(event.generationId));
    }
  });
}
