// The API's shapes for clients, inferred from the server's zod schemas (types only: no zod at run time).
import type { z } from 'zod';
import type { AuthResult, PublicUser, SessionView } from '../schemas/auth.schemas.js';
import type { UserSummary } from '../schemas/common.schemas.js';
import type { ServerToClientEvents } from '../realtime/events.js';
import type {
  AddParticipantBody,
  Conversation as ConversationSchema,
  ConversationListItem as ConversationListItemSchema,
  ConversationPage as ConversationPageSchema,
  CreateConversationBody,
  Participant as ParticipantSchema,
  UpdateConversationBody,
} from '../schemas/conversation.schemas.js';
import type {
  AttachmentView,
  BranchSwitch as BranchSwitchSchema,
  GenerationRef,
  MessagePage as MessagePageSchema,
  ReadReceipt as ReadReceiptSchema,
  SearchHit as SearchHitSchema,
  SearchResults as SearchResultsSchema,
  SendMessageBody,
  SendMessageResult as SendMessageResultSchema,
} from '../schemas/message.schemas.js';

export type User = z.output<typeof PublicUser>;
export type UserRef = z.output<typeof UserSummary>;
export type Session = z.output<typeof SessionView>;
export type AuthTokens = z.output<typeof AuthResult>;
export type Conversation = z.output<typeof ConversationSchema>;
export type ConversationListItem = z.output<typeof ConversationListItemSchema>;
export type ConversationPage = z.output<typeof ConversationPageSchema>;
export type Participant = z.output<typeof ParticipantSchema>;
export type CreateConversation = z.input<typeof CreateConversationBody>;
export type UpdateConversation = z.input<typeof UpdateConversationBody>;
export type AddParticipant = z.input<typeof AddParticipantBody>;
export type { MessageView as Message } from '../schemas/message.schemas.js';
export type MessagePage = z.output<typeof MessagePageSchema>;
export type SendMessage = z.input<typeof SendMessageBody>;
export type SendMessageResult = z.output<typeof SendMessageResultSchema>;
export type Generation = z.output<typeof GenerationRef>;
export type BranchSwitch = z.output<typeof BranchSwitchSchema>;
export type Attachment = z.output<typeof AttachmentView>;
export type ReadMark = z.output<typeof ReadReceiptSchema>;
export type SearchHit = z.output<typeof SearchHitSchema>;
export type SearchResults = z.output<typeof SearchResultsSchema>;

/** The error envelope's fields, as thrown by the client. */
export class ParleyError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ParleyError';
  }
}

type ServerPayload<E extends keyof ServerToClientEvents> = Parameters<ServerToClientEvents[E]>[0];

/**
 * An answer's events, each once and in `seq` order, whichever way they came (the socket's
 * `onAnswer`, or `streamGeneration` over SSE). A failed answer sends `error` then `end` with
 * status FAILED, both with the error's seq.
 */
export type AnswerEvent =
  | { type: 'start'; data: ServerPayload<'ai:stream:start'> }
  | { type: 'delta'; data: ServerPayload<'ai:stream:delta'> }
  | { type: 'end'; data: ServerPayload<'ai:stream:end'> }
  | { type: 'error'; data: ServerPayload<'ai:error'> };
