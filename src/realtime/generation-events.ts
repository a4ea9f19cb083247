// How a generation's log events look on a socket: one mapping for the live broadcast and for
// generation:resume, so a replayed event is the event that was sent.
import type { GenerationEvent } from '../ai/generation-log.js';
import type { ServerToClientEvents } from './events.js';

export const generationRoom = (generationId: string) => `generation:${generationId}`;
/**
 * The sockets that follow an answer through generation:resume: they hear it from that follow
 * alone, so the broadcasts to the conversation (start, end, error) leave them out.
 */
export const resumedRoom = (generationId: string) => `generation:${generationId}:resumed`;

type Emitted = {
  [E in keyof ServerToClientEvents]: [E, Parameters<ServerToClientEvents[E]>[0]];
}[keyof ServerToClientEvents];

export function toSocketEvents(event: GenerationEvent): Emitted[] {
  const { generationId, messageId, seq } = event;
  switch (event.type) {
    case 'start':
      return [
        ['ai:stream:start', { generationId, messageId, conversationId: event.conversationId, seq }],
      ];
    case 'delta':
      return [['ai:stream:delta', { generationId, messageId, seq, delta: event.delta }]];
    case 'end':
      return [
        [
          'ai:stream:end',
          {
            generationId,
            messageId,
            conversationId: event.conversationId,
            seq,
            status: 'SENT',
            finishReason: event.finishReason,
            usage: event.usage,
            model: event.model,
          },
        ],
      ];
    case 'error':
      return [
        [
          'ai:error',
          {
            generationId,
            messageId,
            conversationId: event.conversationId,
            seq,
            error: event.error,
            code: event.code,
          },
        ],
        [
          'ai:stream:end',
          {
            generationId,
            messageId,
            conversationId: event.conversationId,
            seq,
            status: 'FAILED',
            finishReason: 'error',
            usage: null,
            model: null,
          },
        ],
      ];
  }
}
