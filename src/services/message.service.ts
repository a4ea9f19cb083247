// Messages: send (idempotent per client id, rate-limited per user across HTTP and sockets),
// keyset pages, edit by the author, soft delete by the author, conversation admins or global
// moderators.
import type { Attachment, Message } from '../db/schema.js';
import type { EventBus } from '../events/event-bus.js';
import {
  AppError,
  conflict,
  forbidden,
  notFound,
  rateLimited,
  validationError,
} from '../errors.js';
import type { Limiter } from '../infra/rate-limiter.js';
import type { AttachmentRepository } from '../repositories/attachment.repository.js';
import type { ConversationRepository } from '../repositories/conversation.repository.js';
import type { MessageRepository } from '../repositories/message.repository.js';
import type {
  ListMessagesQuery,
  MessageView,
  SendMessageBody,
} from '../schemas/message.schemas.js';
import { atLeast, canModerate, requireRole } from './access.js';
import type { GenerationRef, GenerationService } from './generation.service.js';
import type { Principal } from './session.service.js';
import { toMessageView, type MessageViews } from './views.js';

export interface SendResult {
  message: MessageView;
  /** True when a repeated clientMessageId returned the message sent the first time. */
  replayed: boolean;
  /** The AI's answer, started when the conversation has AI on and the send did not say ai: false. */
  generation?: GenerationRef;
}

export class MessageService {
  constructor(
    private readonly conversations: ConversationRepository,
    private readonly messages: MessageRepository,
    private readonly views: MessageViews,
    private readonly events: EventBus,
    /** 30 messages a minute per user (SPEC §5), shared by every way of sending. */
    private readonly sendLimiter: Limiter,
    private readonly attachments: AttachmentRepository,
    private readonly generations: GenerationService,
  ) {}

  /**
   * Sends a user's message. The common case is one statement (participant check, insert,
   * conversation update, author); replies and attachments check access first, so an outsider
   * cannot probe which messages or uploads exist. A repeated clientMessageId returns the first
   * message; each send attempt counts against the user's budget (a retry refused for the budget
   * still gets its replay).
   */
  async send(
    principal: Principal,
    conversationId: string,
    body: SendMessageBody,
  ): Promise<SendResult> {
    const verdict = await this.sendLimiter.hit(principal.userId);
    if (!verdict.allowed) {
      const earlier = body.clientMessageId
        ? await this.replay(principal.userId, conversationId, body.clientMessageId)
        : undefined;
      if (earlier) return earlier;
      throw rateLimited(Math.ceil(verdict.retryAfterMs / 1000), 'Too many messages; slow down');
    }
    const attachmentIds = [...new Set(body.attachments ?? [])];
    if (body.parentId || attachmentIds.length) {
      requireRole(await this.conversations.getAccess(conversationId, principal.userId));
    }
    if (body.parentId && !(await this.messages.position(conversationId, body.parentId))) {
      throw fieldError('parentId', 'is not a message of this conversation');
    }
    const files = await this.attachments.listUnsent(attachmentIds, principal.userId);
    if (files.length !== attachmentIds.length) throw unusableAttachments();

    const result = await this.messages.createAsParticipant(
      {
        conversationId,
        userId: principal.userId,
        content: body.content,
        role: 'USER',
        type: files.length ? typeOfAttachments(files) : (body.type ?? 'TEXT'),
        parentId: body.parentId ?? null,
        metadata: body.metadata ?? null,
        clientMessageId: body.clientMessageId ?? null,
      },
      attachmentIds,
    );
    if (!result.ok) {
      if (result.reason === 'attachments-unavailable') throw unusableAttachments();
      if (result.reason === 'duplicate-client-id') {
        const earlier = await this.replay(
          principal.userId,
          conversationId,
          body.clientMessageId ?? '',
        );
        if (earlier) return earlier;
        throw conflict('clientMessageId is already in use');
      }
      // Nothing was written: say why (404 no such conversation, 403 not a participant).
      requireRole(await this.conversations.getAccess(conversationId, principal.userId));
      throw conflict('The conversation changed while sending; try again');
    }
    // A new message has no reactions yet, and its attachments are the files just claimed.
    const message = toMessageView(
      result.message,
      result.author,
      [],
      files.map((file) => ({ ...file, messageId: result.message.id })),
    );
    this.events.publish('message.created', { conversationId, message });
    const generation =
      body.ai === false
        ? undefined
        : await this.generations.answer(
            principal.userId,
            conversationId,
            result.message.id,
            result.settings,
          );
    return { message, replayed: false, ...(generation ? { generation } : {}) };
  }

  /**
   * Edit-and-resend (SPEC §5): a new USER message beside the original (same parent) with the new
   * text, and a new answer to it. The old branch stays.
   */
  async editBranch(principal: Principal, messageId: string, content: string): Promise<SendResult> {
    const { message } = requireRole(
      await this.messages.getAccess(messageId, principal.userId),
      'MEMBER',
      'Message',
    );
    if (message.isDeleted) throw notFound('Message');
    if (message.role !== 'USER') throw fieldError('messageId', 'must be a user message');
    if (message.userId !== principal.userId)
      throw forbidden('Only the author can edit-and-resend a message');
    return this.send(principal, message.conversationId, {
      content,
      type: message.type === 'CODE' || message.type === 'MARKDOWN' ? message.type : 'TEXT',
      parentId: message.parentId ?? '',
    });
  }

  /** A new answer beside an assistant message (same user message), the old one kept. */
  async regenerate(
    principal: Principal,
    messageId: string,
  ): Promise<{ generation: GenerationRef }> {
    const { message } = requireRole(
      await this.messages.getAccess(messageId, principal.userId),
      'MEMBER',
      'Message',
    );
    if (message.isDeleted) throw notFound('Message');
    if (message.role !== 'ASSISTANT' || !message.parentId)
      throw fieldError('messageId', 'must be an AI answer');
    const verdict = await this.sendLimiter.hit(principal.userId);
    if (!verdict.allowed)
      throw rateLimited(Math.ceil(verdict.retryAfterMs / 1000), 'Too many messages; slow down');
    const access = await this.conversations.getAccess(message.conversationId, principal.userId);
    const generation = await this.generations.answer(
      principal.userId,
      message.conversationId,
      message.parentId,
      {
        ...access?.conversation.settings,
        aiEnabled: true,
      },
    );
    if (!generation) throw new AppError('UNAVAILABLE', 'AI answers are turned off on this server');
    return { generation };
  }

  async list(principal: Principal, conversationId: string, query: ListMessagesQuery) {
    requireRole(await this.conversations.getAccess(conversationId, principal.userId));
    if (query.branch === 'active') return this.listActiveBranch(conversationId, query);
    const cursorId = query.before ?? query.after;
    const position = cursorId ? await this.messages.position(conversationId, cursorId) : undefined;
    if (cursorId && !position) {
      throw fieldError(query.before ? 'before' : 'after', 'is not a message of this conversation');
    }
    const page = await this.messages.page(conversationId, {
      limit: query.limit,
      ...(query.before && position ? { before: position } : {}),
      ...(query.after && position ? { after: position } : {}),
    });
    return { messages: await this.views.build(page.rows), hasMore: page.hasMore };
  }

  /**
   * The active branch (SPEC §4): the path from the conversation's newest message back to the
   * root, oldest first, paged like the full list.
   */
  private async listActiveBranch(conversationId: string, query: ListMessagesQuery) {
    const leaf = await this.messages.newestMessageId(conversationId);
    const branch = leaf ? await this.messages.branch(leaf) : [];
    const cursorId = query.before ?? query.after;
    const at = cursorId ? branch.findIndex((m) => m.id === cursorId) : -1;
    if (cursorId && at < 0) {
      throw fieldError(query.before ? 'before' : 'after', 'is not a message of the active branch');
    }
    const [start, end] = query.after
      ? [at + 1, Math.min(branch.length, at + 1 + query.limit)]
      : [Math.max(0, (cursorId ? at : branch.length) - query.limit), cursorId ? at : branch.length];
    const hasMore = query.after ? end < branch.length : start > 0;
    return { messages: await this.views.build(branch.slice(start, end)), hasMore };
  }

  /** Only the author edits, and only while still a participant. */
  async edit(principal: Principal, messageId: string, content: string): Promise<MessageView> {
    const { message } = requireRole(
      await this.messages.getAccess(messageId, principal.userId),
      'MEMBER',
      'Message',
    );
    if (message.userId !== principal.userId) throw forbidden('Only the author can edit a message');
    if (message.isDeleted) throw notFound('Message');
    const updated = await this.messages.updateContent(messageId, content);
    if (!updated) throw notFound('Message');
    const view = await this.views.one(updated);
    this.events.publish('message.updated', {
      conversationId: message.conversationId,
      message: view,
    });
    return view;
  }

  async remove(principal: Principal, messageId: string) {
    const access = await this.messages.getAccess(messageId, principal.userId);
    if (!access) throw notFound('Message');
    const { message, role } = access;
    const allowed =
      canModerate(principal.role) ||
      (role !== null && (message.userId === principal.userId || atLeast(role, 'ADMIN')));
    if (!allowed) {
      throw forbidden(
        role
          ? 'Only the author or the conversation’s owner or admins can delete this message'
          : 'You are not a participant of this conversation',
      );
    }
    if (message.isDeleted || !(await this.messages.softDelete(messageId)))
      throw notFound('Message');
    this.events.publish('message.deleted', {
      conversationId: message.conversationId,
      messageId,
      by: principal.userId,
    });
    return { id: messageId, conversationId: message.conversationId, deleted: true };
  }

  private async replay(userId: string, conversationId: string, clientMessageId: string) {
    const earlier: Message | undefined = await this.messages.getByClientMessageId(
      userId,
      clientMessageId,
    );
    if (!earlier) return undefined;
    if (earlier.conversationId !== conversationId) {
      throw conflict('clientMessageId was already used for a message in another conversation');
    }
    return { message: await this.views.one(earlier), replayed: true };
  }
}

const fieldError = (path: string, message: string) =>
  validationError(`${path} ${message}`, [{ path, message }]);

const unusableAttachments = () =>
  fieldError('attachments', 'must be your own uploads, not yet sent in a message');

/** A message's type follows its attachments (SPEC §5): all images → IMAGE, and so on; mixed → FILE. */
function typeOfAttachments(files: readonly Attachment[]): Message['type'] {
  const kinds = new Set(files.map((f) => f.mimeType.split('/')[0]));
  if (kinds.size === 1) {
    const [kind] = kinds;
    if (kind === 'image') return 'IMAGE';
    if (kind === 'audio') return 'AUDIO';
    if (kind === 'video') return 'VIDEO';
  }
  return 'FILE';
}
