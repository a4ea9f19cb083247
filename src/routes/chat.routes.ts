// /api/chat (SPEC §5 Messages): the seed's routes.
import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import type { ChatController } from '../controllers/chat.controller.js';
import type { GenerationController } from '../controllers/generation.controller.js';
import { IdParams } from '../schemas/common.schemas.js';
import { byUser, rateLimit } from '../middleware/rate-limit.middleware.js';
import { validate } from '../middleware/validate.middleware.js';
import type { Limiter } from '../infra/rate-limiter.js';
import { doc } from '../openapi/route-meta.js';
import { ConversationParams } from '../schemas/conversation.schemas.js';
import {
  BranchSwitch,
  EditMessageBody,
  ListMessagesQuery,
  MarkReadBody,
  Message,
  MessagePage,
  MessageParams,
  Reaction,
  ReactionBody,
  ReactionParams,
  ReactionRemoved,
  ReadReceipt,
  SearchQuery,
  SearchResults,
  SendMessageBody,
  SendMessageResult,
  GenerationRef,
} from '../schemas/message.schemas.js';

const MessageDeleted = z.object({
  id: z.string(),
  conversationId: z.string(),
  deleted: z.literal(true),
});
const inConversation = ['FORBIDDEN', 'NOT_FOUND'] as const;

export function chatRoutes(
  chat: ChatController,
  generations: GenerationController,
  requireAuth: RequestHandler,
  limits: { search: Limiter },
): Router {
  const router = Router();
  router.use(requireAuth);
  // One count per user for both search routes (SPEC §8), taken before the query is even read:
  // refused requests cost nothing.
  const searchLimit = rateLimit(limits.search, byUser);
  router.post(
    '/conversations/:id/messages',
    doc({
      summary:
        'Send a message (30 a minute per user; a repeated clientMessageId returns the first message). Where the AI answers, a user has at most AI_MAX_PENDING_PER_USER answers running or waiting: another is a 429, nothing stored',
      success: { status: 201, schema: SendMessageResult },
      errors: [...inConversation, 'RATE_LIMITED', 'CONFLICT'],
    }),
    validate({ params: ConversationParams, body: SendMessageBody }),
    chat.sendMessage,
  );
  router.get(
    '/conversations/:id/messages',
    doc({
      summary: 'A page of messages, oldest first (keyset: before/after a message id)',
      success: { status: 200, schema: MessagePage },
      errors: [...inConversation],
    }),
    validate({ params: ConversationParams, query: ListMessagesQuery }),
    chat.listMessages,
  );
  router.patch(
    '/messages/:id',
    doc({
      summary: 'Edit a message (author only)',
      success: { status: 200, schema: Message },
      errors: [...inConversation],
    }),
    validate({ params: MessageParams, body: EditMessageBody }),
    chat.editMessage,
  );
  router.delete(
    '/messages/:id',
    doc({
      summary: 'Delete a message (author, conversation OWNER/ADMIN, global ADMIN/MODERATOR)',
      success: { status: 200, schema: MessageDeleted },
      errors: [...inConversation],
    }),
    validate({ params: MessageParams }),
    chat.deleteMessage,
  );
  router.post(
    '/messages/:id/reactions',
    doc({
      summary: 'React with an emoji (adding the same again is not an error)',
      success: { status: 201, schema: Reaction },
      errors: [...inConversation],
    }),
    validate({ params: MessageParams, body: ReactionBody }),
    chat.addReaction,
  );
  router.delete(
    '/messages/:id/reactions/:emoji',
    doc({
      summary: 'Remove my reaction (emoji URL-encoded)',
      success: { status: 200, schema: ReactionRemoved },
      errors: [...inConversation],
    }),
    validate({ params: ReactionParams }),
    chat.removeReaction,
  );
  router.post(
    '/conversations/:id/read',
    doc({
      summary: 'Mark read: now, or up to a message (never moves back)',
      success: { status: 200, schema: ReadReceipt },
      errors: [...inConversation],
    }),
    validate({ params: ConversationParams, body: MarkReadBody }),
    chat.markRead,
  );
  router.get(
    '/conversations/:id/search',
    doc({
      summary:
        'Search one conversation: ranked, with highlighted snippets (rate-limited per user; 503 when the query takes too long)',
      success: { status: 200, schema: SearchResults },
      errors: [...inConversation, 'UNAVAILABLE'],
    }),
    searchLimit,
    validate({ params: ConversationParams, query: SearchQuery }),
    chat.searchConversation,
  );
  router.post(
    '/messages/:id/edit-branch',
    doc({
      summary:
        'Edit-and-resend one’s own user message: a new version with the new text (the original and its answers leave the active branch) and a new AI answer. 409 where the AI is off; 429 over the message budget or the per-user answer cap (AI_MAX_PENDING_PER_USER)',
      success: { status: 201, schema: SendMessageResult },
      errors: [...inConversation, 'RATE_LIMITED', 'CONFLICT'],
    }),
    validate({ params: MessageParams, body: EditMessageBody }),
    chat.editBranch,
  );
  router.post(
    '/messages/:id/regenerate',
    doc({
      summary:
        'A new AI answer to the same question, a version of this one (which leaves the active branch, kept under branch=all). 409 where the AI is off; 429 over the message budget or the per-user answer cap (AI_MAX_PENDING_PER_USER)',
      success: { status: 201, schema: z.object({ generation: GenerationRef }) },
      errors: [...inConversation, 'RATE_LIMITED', 'CONFLICT'],
    }),
    validate({ params: MessageParams }),
    chat.regenerate,
  );
  // The write side of `?branch=active`: afterwards this version is on it.
  router.post(
    '/messages/:id/activate',
    doc({
      summary:
        'Switch between branches: make this version (of a regenerated answer or an edited-and-resent message) the chosen one, so the active branch runs through it and what replied to it; the other versions and what replied to them leave it. Any participant. 409 for a message without other versions, or while an answer that would join or leave the branch is being written',
      success: { status: 200, schema: BranchSwitch },
      errors: [...inConversation, 'CONFLICT'],
    }),
    validate({ params: MessageParams }),
    chat.activate,
  );
  router.get(
    '/generations/:id/stream',
    doc({
      summary:
        'Follow an AI answer as Server-Sent Events (id = seq; resume with Last-Event-ID). 204 when the answer has ended and Last-Event-ID is its end: nothing more will come.',
      success: { status: 200, schema: z.string(), contentType: 'text/event-stream', raw: true },
      errors: [...inConversation],
    }),
    validate({ params: IdParams }),
    generations.stream,
  );
  router.post(
    '/generations/:id/stop',
    doc({
      summary: 'Stop an AI answer (any participant): the upstream request is aborted',
      success: {
        status: 200,
        schema: z.object({ generationId: z.string(), stopped: z.boolean() }),
      },
      errors: [...inConversation],
    }),
    validate({ params: IdParams }),
    generations.stop,
  );
  router.get(
    '/search',
    doc({
      summary:
        'Search all my conversations (rate-limited per user; 503 when the query takes too long)',
      success: { status: 200, schema: SearchResults },
      errors: ['UNAVAILABLE'],
    }),
    searchLimit,
    validate({ query: SearchQuery }),
    chat.searchAll,
  );
  return router;
}
