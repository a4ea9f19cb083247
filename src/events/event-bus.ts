// The typed domain event bus. Services publish what happened (`noun.verb`); the realtime
// gateway, the generation service and caches subscribe. In-process here; with Redis the same
// interface spans the cluster (redis-event-bus.ts).
import { EventEmitter } from 'node:events';
import type { MessageView } from '../schemas/message.schemas.js';

type ParticipantRole = 'OWNER' | 'ADMIN' | 'MEMBER';

/**
 * Everything that happened, as services publish it. Payloads are plain JSON (ISO timestamps),
 * so the same object can cross Redis or go out on a socket unchanged.
 */
export interface DomainEvents {
  /**
   * A session can no longer be used: logout, revoke from the session list, refresh-token reuse,
   * the user's password changed (their other sessions), or the account deleted.
   */
  'session.revoked': {
    sessionId: string;
    userId: string;
    reason: 'logout' | 'revoked' | 'reuse' | 'password-changed' | 'account-deleted';
  };
  'conversation.created': { conversationId: string; participantIds: string[]; by: string };
  /** Title, description, settings or archive state changed. */
  'conversation.updated': { conversationId: string; changes: string[]; by: string };
  'conversation.deleted': { conversationId: string; participantIds: string[]; by: string };
  'participant.added': {
    conversationId: string;
    userId: string;
    role: ParticipantRole;
    by: string;
  };
  'participant.removed': {
    conversationId: string;
    userId: string;
    by: string;
    reason: 'removed' | 'left';
  };
  /**
   * A conversation left without an OWNER (its owner left) was handed to `ownerId`, the
   * longest-serving admin, else member. `previousOwnerId` is null when the one removed was not
   * the owner (a conversation that had lost its owner before).
   */
  'ownership.transferred': {
    conversationId: string;
    ownerId: string;
    previousOwnerId: string | null;
    by: string;
  };
  /** A new message, from a user (REST or socket) or the AI; `message` is the API's Message. */
  'message.created': { conversationId: string; message: MessageView };
  'message.updated': { conversationId: string; message: MessageView };
  'message.deleted': { conversationId: string; messageId: string; by: string };
  /**
   * `messageId` became the chosen version of its group (POST /messages/:id/activate): `active`
   * joined the active branch, `superseded` left it (ids, in the order they changed).
   */
  'branch.switched': {
    conversationId: string;
    messageId: string;
    active: string[];
    superseded: string[];
    by: string;
  };
  'reaction.added': { conversationId: string; messageId: string; userId: string; emoji: string };
  'reaction.removed': { conversationId: string; messageId: string; userId: string; emoji: string };
  /** An AI answer started (its SENDING message exists): every instance follows it for its sockets. */
  'generation.started': { generationId: string; messageId: string; conversationId: string };
  'conversation.read': {
    conversationId: string;
    userId: string;
    lastReadAt: string;
    messageId: string | null;
  };
}

export type DomainEventName = keyof DomainEvents;
export type DomainEventHandler<E extends DomainEventName> = (
  payload: DomainEvents[E],
) => void | Promise<void>;

export interface EventBus {
  publish<E extends DomainEventName>(event: E, payload: DomainEvents[E]): void;
  /**
   * The handler runs once per event, in the process that published it: for work done once for
   * the whole cluster (a room emit through the Socket.IO adapter, a cache entry in Redis).
   * Returns a function that removes the handler.
   */
  subscribe<E extends DomainEventName>(event: E, handler: DomainEventHandler<E>): () => void;
  /**
   * The handler runs in every process for every event, wherever it was published: for what each
   * process holds itself (its SSE streams, its followers of an answer). Events subscribed this
   * way cross Redis, so their payloads stay small (under 64 KB).
   */
  subscribeEverywhere<E extends DomainEventName>(
    event: E,
    handler: DomainEventHandler<E>,
  ): () => void;
}

/**
 * Handlers run after the publisher's current work (on a microtask), so a slow or failing
 * subscriber never delays or breaks the request that published; failures go to `onError`.
 */
export function createInProcessEventBus(
  onError: (error: unknown, event: DomainEventName) => void,
): EventBus {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  const subscribe: EventBus['subscribe'] = (event, handler) => {
    const listener = (payload: DomainEvents[typeof event]) => {
      try {
        Promise.resolve(handler(payload)).catch((error: unknown) => onError(error, event));
      } catch (error) {
        onError(error, event);
      }
    };
    emitter.on(event, listener);
    return () => emitter.off(event, listener);
  };
  return {
    publish(event, payload) {
      queueMicrotask(() => emitter.emit(event, payload));
    },
    subscribe,
    // One process: everywhere is here.
    subscribeEverywhere: subscribe,
  };
}
