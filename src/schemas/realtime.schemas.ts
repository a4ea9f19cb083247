// Payloads of Socket.IO client events (SPEC §6), with the same rules as their REST twins.
import { z } from 'zod';
import { Id } from './common.schemas.js';
import { contentOrFiles, SendMessageFields } from './message.schemas.js';

export const ConversationRef = z.strictObject({ conversationId: Id });
export type ConversationRef = z.infer<typeof ConversationRef>;

export const SocketSendMessage = SendMessageFields.extend({ conversationId: Id }).superRefine(
  contentOrFiles,
);
export type SocketSendMessage = z.infer<typeof SocketSendMessage>;

export const SocketMarkRead = z.strictObject({ conversationId: Id, messageId: Id.optional() });
export type SocketMarkRead = z.infer<typeof SocketMarkRead>;

export const GenerationRef = z.strictObject({ generationId: Id });
export type GenerationRef = z.infer<typeof GenerationRef>;

export const GenerationResume = z.strictObject({
  generationId: Id,
  afterSeq: z.int().min(-1).default(-1),
});
export type GenerationResume = z.infer<typeof GenerationResume>;

export const SocketAuthRefresh = z.strictObject({ token: z.string().min(1).max(4096) });
export type SocketAuthRefresh = z.infer<typeof SocketAuthRefresh>;
