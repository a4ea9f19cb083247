// /api/chat: messages, reactions, read marks and search → services → envelope.
import type { Request, Response } from 'express';
import { principalOf } from '../middleware/auth.middleware.js';
import type { ConversationParams } from '../schemas/conversation.schemas.js';
import type {
  EditMessageBody,
  ListMessagesQuery,
  MarkReadBody,
  MessageParams,
  ReactionBody,
  ReactionParams,
  SearchQuery,
  SendMessageBody,
} from '../schemas/message.schemas.js';
import type { GenerationService } from '../services/generation.service.js';
import type { MessageService } from '../services/message.service.js';
import type { ParticipantService } from '../services/participant.service.js';
import type { ReactionService } from '../services/reaction.service.js';
import type { SearchService } from '../services/search.service.js';
import type { VersionsService } from '../services/versions.service.js';
import { created, ok } from './respond.js';
import { streamGeneration } from './sse.js';

export class ChatController {
  constructor(
    private readonly messages: MessageService,
    private readonly reactions: ReactionService,
    private readonly participants: ParticipantService,
    private readonly search: SearchService,
    private readonly generationService: GenerationService,
    private readonly versions: VersionsService,
  ) {}

  sendMessage = async (
    req: Request<ConversationParams, unknown, SendMessageBody>,
    res: Response,
  ) => {
    const principal = principalOf(req);
    const { message, replayed, generation } = await this.messages.send(
      principal,
      req.params.id,
      req.body,
    );
    // A retried send answers exactly as the first one did, and says it was a replay.
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    if (
      generation &&
      req.accepts(['application/json', 'text/event-stream']) === 'text/event-stream'
    ) {
      // The same request answers as the SSE stream of the answer it started (SPEC §5).
      // From the start (-1): the answer just began, so there is always something to follow.
      const follow = (await this.generationService.openStream(principal, generation.id, -1))!;
      res.setHeader('X-Message-Id', message.id);
      res.setHeader('X-Generation-Id', generation.id);
      streamGeneration(req, res, follow, 201);
      return;
    }
    created(res, { message, ...(generation ? { generation } : {}) });
  };

  editBranch = async (req: Request<MessageParams, unknown, EditMessageBody>, res: Response) => {
    const { message, generation } = await this.versions.editBranch(
      principalOf(req),
      req.params.id,
      req.body.content,
    );
    created(res, { message, ...(generation ? { generation } : {}) });
  };

  regenerate = async (req: Request<MessageParams>, res: Response) => {
    created(res, await this.versions.regenerate(principalOf(req), req.params.id));
  };

  activate = async (req: Request<MessageParams>, res: Response) => {
    ok(res, await this.versions.activate(principalOf(req), req.params.id));
  };

  listMessages = async (req: Request<ConversationParams>, res: Response) => {
    const query = req.query as unknown as ListMessagesQuery;
    ok(res, await this.messages.list(principalOf(req), req.params.id, query));
  };

  editMessage = async (req: Request<MessageParams, unknown, EditMessageBody>, res: Response) => {
    ok(res, await this.messages.edit(principalOf(req), req.params.id, req.body.content));
  };

  deleteMessage = async (req: Request<MessageParams>, res: Response) => {
    ok(res, await this.messages.remove(principalOf(req), req.params.id));
  };

  addReaction = async (req: Request<MessageParams, unknown, ReactionBody>, res: Response) => {
    created(res, await this.reactions.add(principalOf(req), req.params.id, req.body.emoji));
  };

  removeReaction = async (req: Request<ReactionParams>, res: Response) => {
    ok(res, await this.reactions.remove(principalOf(req), req.params.id, req.params.emoji));
  };

  markRead = async (req: Request<ConversationParams, unknown, MarkReadBody>, res: Response) => {
    ok(res, await this.participants.markRead(principalOf(req), req.params.id, req.body.messageId));
  };

  searchConversation = async (req: Request<ConversationParams>, res: Response) => {
    const query = req.query as unknown as SearchQuery;
    ok(res, await this.search.inConversation(principalOf(req), req.params.id, query));
  };

  searchAll = async (req: Request, res: Response) => {
    ok(res, await this.search.everywhere(principalOf(req), req.query as unknown as SearchQuery));
  };
}
