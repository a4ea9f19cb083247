// The Socket.IO contract (SPEC §6), typed for the server and exported for clients:
//   import type { ClientToServerEvents, ServerToClientEvents } from 'parley/realtime/events';
//   const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(url, { auth: { token } });
import type { z } from 'zod';
import type {
  BranchSwitch as BranchSwitchSchema,
  MessageView,
  ReadReceipt as ReadReceiptSchema,
  SendMessageResult,
} from '../schemas/message.schemas.js';
import type {
  ConversationRef,
  GenerationRef,
  GenerationResume,
  SocketAuthRefresh,
  SocketMarkRead,
  SocketSendMessage,
} from '../schemas/realtime.schemas.js';

/** Codes a socket failure carries: the seed's three, plus the REST codes that apply. */
export type SocketErrorCode =
  | 'PERMISSION_DENIED'
  | 'JOIN_FAILED'
  | 'SEND_FAILED'
  | 'VALIDATION_ERROR'
  | 'RATE_LIMITED'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'UNAUTHORIZED'
  /** A service Parley depends on (PostgreSQL, Redis) is unavailable: try again shortly. */
  | 'UNAVAILABLE'
  | 'INTERNAL';

export interface SocketError {
  code: SocketErrorCode;
  message: string;
  /** Which client event failed (on the `error` event; an ack knows already). */
  event?: string;
}

/** Every client event may pass an ack; it is answered exactly once. */
export type Ack<T> = (result: { ok: true; data: T } | { ok: false; error: SocketError }) => void;

/** POST /conversations/:id/read's answer (derived from its schema), plus the seed's name for the instant. */
export type ReadReceipt = z.output<typeof ReadReceiptSchema> & {
  /** Same instant as lastReadAt, under the seed's name. */
  readAt: string;
};

/**
 * Handshake `auth`: `{ token, seedEvents? }`. `seedEvents: false` turns off the seed's
 * `message:received` alias for this socket (modern clients listen to `message:new` only).
 */
export interface HandshakeAuth {
  token: string;
  seedEvents?: boolean;
}

/**
 * Client events. Payload types are derived from the zod schemas the server validates them with
 * (schemas/realtime.schemas.ts), so the contract cannot drift from what is enforced.
 */
export interface ClientToServerEvents {
  /** Re-subscribe to a conversation's events (participants only; sockets join their rooms at connect). */
  'conversation:join': (
    payload: z.input<typeof ConversationRef>,
    ack?: Ack<{ conversationId: string }>,
  ) => void;
  /** Stop receiving a conversation's events on this socket (membership is unchanged). */
  'conversation:leave': (
    payload: z.input<typeof ConversationRef>,
    ack?: Ack<{ conversationId: string }>,
  ) => void;
  /** Same rules as POST /api/chat/conversations/:id/messages: validation, 30/min, clientMessageId. */
  'message:send': (
    payload: z.input<typeof SocketSendMessage>,
    ack?: Ack<z.output<typeof SendMessageResult> & { replayed: boolean }>,
  ) => void;
  'message:read': (payload: z.input<typeof SocketMarkRead>, ack?: Ack<ReadReceipt>) => void;
  'typing:start': (
    payload: z.input<typeof ConversationRef>,
    ack?: Ack<{ conversationId: string }>,
  ) => void;
  'typing:stop': (
    payload: z.input<typeof ConversationRef>,
    ack?: Ack<{ conversationId: string }>,
  ) => void;
  /** Any participant may stop a running answer: the upstream request is aborted. */
  'generation:stop': (
    payload: z.input<typeof GenerationRef>,
    ack?: Ack<{ generationId: string; stopped: boolean }>,
  ) => void;
  /**
   * Replays a generation's events after `afterSeq` (-1: from the start) to this socket, then
   * follows it live: exactly the missed events, no gap, no duplicate.
   */
  'generation:resume': (
    payload: z.input<typeof GenerationResume>,
    ack?: Ack<{ generationId: string; replayed: number; finished: boolean }>,
  ) => void;
  /** A fresh access token for the same session, before the current one expires. */
  'auth:refresh': (
    payload: z.input<typeof SocketAuthRefresh>,
    ack?: Ack<{ expiresAt: string }>,
  ) => void;
}

export interface ServerToClientEvents {
  /** Every new message, from REST or a socket, a user or the AI. */
  'message:new': (payload: { conversationId: string; message: MessageView }) => void;
  /** The seed's name for message:new, same payload. */
  'message:received': (payload: { conversationId: string; message: MessageView }) => void;
  'message:updated': (payload: { conversationId: string; message: MessageView }) => void;
  'message:deleted': (payload: { conversationId: string; messageId: string }) => void;
  /**
   * Someone switched branches (POST /api/chat/messages/:id/activate): `messageId` is now the
   * chosen version of its group; `active` joined the active branch, `superseded` left it.
   */
  'branch:switched': (payload: BranchSwitched) => void;
  'message:reaction:added': (payload: {
    conversationId: string;
    messageId: string;
    userId: string;
    emoji: string;
  }) => void;
  'message:reaction:removed': (payload: {
    conversationId: string;
    messageId: string;
    userId: string;
    emoji: string;
  }) => void;
  'conversation:read': (payload: ReadReceipt) => void;
  /** To the new participants' own sockets: a conversation they are now in. */
  'conversation:created': (payload: { conversationId: string; by: string }) => void;
  /** `changes: ['owner']` (with `ownerId`): the owner left and `ownerId` inherited it. */
  'conversation:updated': (payload: {
    conversationId: string;
    changes: string[];
    by: string;
    ownerId?: string;
  }) => void;
  'conversation:deleted': (payload: { conversationId: string; by: string }) => void;
  'user:joined': (payload: {
    conversationId: string;
    userId: string;
    role?: string;
    timestamp: string;
  }) => void;
  /** reason: 'left' or 'removed' (membership ended), 'unsubscribed' (conversation:leave on a socket). */
  'user:left': (payload: {
    conversationId: string;
    userId: string;
    reason: 'left' | 'removed' | 'unsubscribed';
    timestamp: string;
  }) => void;
  /** userId is "ai-assistant" while the AI writes. */
  /**
   * `expiresInMs`: a typing state ends by itself this long after its last start, whether or not
   * a stop arrives (the typist's instance may die: a client stops showing it then).
   */
  'typing:start': (payload: {
    conversationId: string;
    userId: string;
    timestamp: string;
    expiresInMs?: number;
  }) => void;
  'typing:stop': (payload: { conversationId: string; userId: string; timestamp: string }) => void;
  /** Only to users who share a conversation with this one. */
  'user:online': (payload: { userId: string; timestamp: string }) => void;
  'user:offline': (payload: { userId: string; timestamp: string }) => void;
  /** An AI answer begins (seq 0); its deltas follow with seq 1, 2, … */
  'ai:stream:start': (payload: {
    generationId: string;
    messageId: string;
    conversationId: string;
    seq: number;
  }) => void;
  /** Only the new text since the previous delta. */
  'ai:stream:delta': (payload: {
    generationId: string;
    messageId: string;
    seq: number;
    delta: string;
  }) => void;
  'ai:stream:end': (payload: AiStreamEnd) => void;
  /** The answer failed (the message is FAILED, its partial text kept); ai:stream:end follows. */
  'ai:error': (payload: {
    generationId: string;
    messageId: string;
    conversationId: string;
    seq: number;
    error: string;
    code: string;
  }) => void;
  /** The access token ran out without auth:refresh; the socket is disconnected right after. */
  'auth:expired': (payload: { message: string }) => void;
  /** A failed client event that had no ack. */
  error: (payload: SocketError) => void;
}

/** POST /messages/:id/activate's answer (derived from its schema), plus who switched. */
export type BranchSwitched = z.output<typeof BranchSwitchSchema> & { by: string };

export interface AiStreamEnd {
  generationId: string;
  messageId: string;
  conversationId: string;
  seq: number;
  status: 'SENT' | 'FAILED';
  /** "stop", "length", "stopped" (someone pressed stop), or "error". */
  finishReason: string;
  usage: { promptTokens: number; completionTokens: number; totalTokens: number } | null;
  model: string | null;
}

/** Between instances (through the adapter): see large-emit.ts. */
export interface InterServerEvents {
  'parley:large-emit': (emit: LargeEmit) => void;
}

/** A room emit whose payload waits in Redis under `key` (too large for pub/sub). */
export interface LargeEmit {
  rooms: string[];
  except: string[];
  event: keyof ServerToClientEvents;
  key: string;
}

/** What the handshake established, kept on each socket. */
export interface SocketData {
  userId: string;
  sessionId: string;
  role: 'USER' | 'ADMIN' | 'MODERATOR';
  /** When the access token the socket authenticated with expires (epoch ms). */
  expiresAt: number;
}

export const AI_USER_ID = 'ai-assistant';

export const CLIENT_EVENTS = [
  'conversation:join',
  'conversation:leave',
  'message:send',
  'message:read',
  'typing:start',
  'typing:stop',
  'auth:refresh',
  'generation:stop',
  'generation:resume',
] as const satisfies ReadonlyArray<keyof ClientToServerEvents>;
