// /api/conversations (SPEC §5 Conversations): the seed's routes.
import { Router, type RequestHandler } from 'express';
import type { ConversationController } from '../controllers/conversation.controller.js';
import { validate } from '../middleware/validate.middleware.js';
import { doc } from '../openapi/route-meta.js';
import {
  AddParticipantBody,
  ArchiveBody,
  Conversation,
  ConversationPage,
  ConversationParams,
  CreateConversationBody,
  ListConversationsQuery,
  ParticipantChange,
  ParticipantParams,
  UpdateConversationBody,
} from '../schemas/conversation.schemas.js';
import { z } from 'zod';

const Deleted = z.object({ id: z.string(), deleted: z.literal(true) });
const inConversation = ['FORBIDDEN', 'NOT_FOUND'] as const;

export function conversationRoutes(c: ConversationController, requireAuth: RequestHandler): Router {
  const router = Router();
  router.use(requireAuth);
  router.post(
    '/',
    doc({
      summary: 'Create a conversation (the caller is its OWNER, participantIds join as MEMBERs)',
      success: { status: 201, schema: Conversation },
      errors: ['NOT_FOUND'],
    }),
    validate({ body: CreateConversationBody }),
    c.create,
  );
  router.get(
    '/',
    doc({
      summary: 'List my conversations, newest activity first, with unread counts',
      success: { status: 200, schema: ConversationPage },
    }),
    validate({ query: ListConversationsQuery }),
    c.list,
  );
  router.get(
    '/:id',
    doc({
      summary: 'Get a conversation with its participants',
      success: { status: 200, schema: Conversation },
      errors: [...inConversation],
    }),
    validate({ params: ConversationParams }),
    c.get,
  );
  router.patch(
    '/:id',
    doc({
      summary: 'Change title, description or settings (OWNER, ADMIN)',
      success: { status: 200, schema: Conversation },
      errors: [...inConversation],
    }),
    validate({ params: ConversationParams, body: UpdateConversationBody }),
    c.update,
  );
  router.delete(
    '/:id',
    doc({
      summary: 'Delete a conversation (OWNER; soft delete)',
      success: { status: 200, schema: Deleted },
      errors: [...inConversation],
    }),
    validate({ params: ConversationParams }),
    c.remove,
  );
  router.post(
    '/:id/archive',
    doc({
      summary: 'Archive or unarchive (OWNER, ADMIN); body optional, archived defaults to true',
      success: { status: 200, schema: Conversation },
      errors: [...inConversation],
    }),
    validate({ params: ConversationParams, body: ArchiveBody }),
    c.archive,
  );
  router.post(
    '/:id/participants',
    doc({
      summary: 'Add a participant (OWNER, ADMIN; only the OWNER adds admins)',
      success: { status: 201, schema: ParticipantChange },
      errors: [...inConversation, 'CONFLICT'],
    }),
    validate({ params: ConversationParams, body: AddParticipantBody }),
    c.addParticipant,
  );
  router.delete(
    '/:id/participants/:userId',
    doc({
      summary: 'Remove a participant (OWNER; ADMIN removes members), or leave (oneself)',
      success: { status: 200, schema: ParticipantChange },
      errors: [...inConversation],
    }),
    validate({ params: ParticipantParams }),
    c.removeParticipant,
  );
  return router;
}
