// Ends a long-lived view of a conversation (an SSE stream of an answer) the moment its viewer
// may no longer see it: removed or left, the conversation deleted, or the session revoked.
import type { EventBus } from '../events/event-bus.js';

export function watchAccess(
  events: EventBus,
  viewer: { userId: string; sessionId: string; conversationId: string },
  lost: () => void,
): () => void {
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    unsubscribe();
    lost();
  };
  const subscriptions = [
    events.subscribeEverywhere('participant.removed', (e) => {
      if (e.conversationId === viewer.conversationId && e.userId === viewer.userId) end();
    }),
    events.subscribeEverywhere('conversation.deleted', (e) => {
      if (e.conversationId === viewer.conversationId) end();
    }),
    events.subscribeEverywhere('session.revoked', (e) => {
      if (e.sessionId === viewer.sessionId) end();
    }),
  ];
  const unsubscribe = () => subscriptions.forEach((off) => off());
  return () => {
    ended = true;
    unsubscribe();
  };
}
