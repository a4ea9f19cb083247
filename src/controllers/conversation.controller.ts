// /api/conversations: request → conversation and participant services → envelope.
import type { Request, Response } from 'express';
import { principalOf } from '../middleware/auth.middleware.js';
import type {
  AddParticipantBody,
  ArchiveBody,
  ConversationParams,
  CreateConversationBody,
  ListConversationsQuery,
  ParticipantParams,
  UpdateConversationBody,
} from '../schemas/conversation.schemas.js';
import type { ConversationService } from '../services/conversation.service.js';
import type { ParticipantService } from '../services/participant.service.js';
import { created, ok } from './respond.js';

type Req<Params = ConversationParams, Body = unknown> = Request<Params, unknown, Body>;

export class ConversationController {
  constructor(
    private readonly conversations: ConversationService,
    private readonly participants: ParticipantService,
  ) {}

  create = async (req: Req<object, CreateConversationBody>, res: Response) => {
    created(res, await this.conversations.create(principalOf(req), req.body));
  };

  list = async (req: Request, res: Response) => {
    const query = req.query as unknown as ListConversationsQuery;
    ok(res, await this.conversations.list(principalOf(req), query));
  };

  get = async (req: Req, res: Response) => {
    ok(res, await this.conversations.get(principalOf(req), req.params.id));
  };

  update = async (req: Req<ConversationParams, UpdateConversationBody>, res: Response) => {
    ok(res, await this.conversations.update(principalOf(req), req.params.id, req.body));
  };

  remove = async (req: Req, res: Response) => {
    ok(res, await this.conversations.remove(principalOf(req), req.params.id));
  };

  archive = async (req: Req<ConversationParams, ArchiveBody>, res: Response) => {
    ok(
      res,
      await this.conversations.setArchived(principalOf(req), req.params.id, req.body.archived),
    );
  };

  addParticipant = async (req: Req<ConversationParams, AddParticipantBody>, res: Response) => {
    created(res, await this.participants.add(principalOf(req), req.params.id, req.body));
  };

  removeParticipant = async (req: Req<ParticipantParams>, res: Response) => {
    ok(res, await this.participants.remove(principalOf(req), req.params.id, req.params.userId));
  };
}
