// Messages: send (idempotent per client id, rate-limited per user across HTTP and sockets),
// keyset pages, edit by the author, soft delete by the author, conversation admins or global
// moderators.
import type { Attachment, ConversationSettings, Message } from '../db/schema.js';
import type { EventBus } from '../events/event-bus.js';
import { conflict, forbidden, notFound, rateLimited, fieldError } from '../errors.js';
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
import { isPicture } from './file-kinds.js';
import type { AnswerPlace, GenerationRef, GenerationService } from './generation.service.js';
import type { Principal } from './session.service.js';
import { toMessageView, type MessageViews } from './views.js';

export interface SendResult {
  message: MessageView;
  /** True when a repeated clientMessageId returned the message sent the first time. */
  replayed: boolean;
  /** The AI's answer, started when the conversation has AI on and the send did not say ai: false. */
  generation?: GenerationRef;
}

/** A stored message and its conversation's settings (unset for a replay): what an answer needs. */
export type Stored = SendResult & { settings?: ConversationSettings | null };

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
    // The AI's answer needs a place in its user's queue, taken before anything is stored.
    let ticket: AnswerPlace | undefined;
    if (body.ai !== false && this.generations.enabled) {
      ticket = await this.generations.tryReserve(principal.userId);
      if (!ticket) await this.refuseOverCap(principal, conversationId, body.clientMessageId);
    }
    let stored: Stored;
    try {
      stored = await this.store(principal, conversationId, body);
    } catch (error) {
      ticket?.release();
      throw error;
    }
    const { settings, ...sent } = stored;
    if (!ticket) return sent;
    if (sent.replayed || settings?.aiEnabled === false) {
      ticket.release();
      return sent;
    }
    const generation = await this.generations.answer(
      ticket,
      { id: sent.message.id, conversationId, createdAt: new Date(sent.message.createdAt) },
      settings ?? null,
    );
    return { ...sent, generation };
  }

  /**
   * Over the cap of answers (SPEC §8): a 429, unless this send would not be answered anyway (the
   * conversation has AI off) or it is the retry of a message already sent.
   */
  private async refuseOverCap(
    principal: Principal,
    conversationId: string,
    clientMessageId: string | undefined,
  ): Promise<void> {
    const access = requireRole(
      await this.conversations.getAccess(conversationId, principal.userId),
    );
    if (access.conversation.settings?.aiEnabled === false) return;
    if (clientMessageId && (await this.replay(principal.userId, conversationId, clientMessageId)))
      return;
    throw this.generations.tooManyAnswers();
  }

  /**
   * Stores the message (or finds the one a repeated clientMessageId sent) and publishes it;
   * `replacesId` makes it a version of that message (edit-and-resend, versions.service.ts).
   */
  async store(
    principal: Principal,
    conversationId: string,
    body: SendMessageBody,
    replacesId?: string,
  ): Promise<Stored> {
    const attachmentIds = [...new Set(body.attachments ?? [])];
    if (body.parentId || attachmentIds.length) {
      requireRole(await this.conversations.getAccess(conversationId, principal.userId));
    }
    if (body.parentId && !(await this.messages.position(conversationId, body.parentId))) {
      throw fieldError('parentId', 'is not a message of this conversation');
    }
    // A retry of a send whose files were claimed by the first attempt is a replay, not a 400.
    const filesTaken = async (): Promise<Stored> => {
      const earlier = body.clientMessageId
        ? await this.replay(principal.userId, conversationId, body.clientMessageId)
        : undefined;
      if (earlier) return earlier;
      throw unusableAttachments();
    };
    const files = await this.attachments.listUnsent(attachmentIds, principal.userId);
    if (files.length !== attachmentIds.length) return filesTaken();

    const values = {
      conversationId,
      userId: principal.userId,
      content: body.content,
      role: 'USER' as const,
      type: files.length ? typeOfAttachments(files) : (body.type ?? 'TEXT'),
      parentId: body.parentId ?? null,
      metadata: body.metadata ?? null,
      clientMessageId: body.clientMessageId ?? null,
    };
    const result = replacesId
      ? await this.messages.createAlternative(values, replacesId)
      : await this.messages.createAsParticipant(values, attachmentIds);
    if (!result.ok) {
      if (result.reason === 'attachments-unavailable') return filesTaken();
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
      result.versions,
    );
    this.events.publish('message.created', { conversationId, message });
    return { message, replayed: false, settings: result.settings };
  }

  async list(principal: Principal, conversationId: string, query: ListMessagesQuery) {
    requireRole(await this.conversations.getAccess(conversationId, principal.userId));
    // The active branch (docs/api.md "Branches"): every message no alternative has replaced,
    // paged like the full list. Any message of the conversation is a place to page from, also
    // one that left the branch since the client read it (a regenerate meanwhile).
    const activeOnly = query.branch === 'active';
    const cursorId = query.before ?? query.after;
    const position = cursorId ? await this.messages.position(conversationId, cursorId) : undefined;
    if (cursorId && !position) {
      throw fieldError(query.before ? 'before' : 'after', 'is not a message of this conversation');
    }
    const page = await this.messages.page(conversationId, {
      limit: query.limit,
      activeOnly,
      ...(query.before && position ? { before: position } : {}),
      ...(query.after && position ? { after: position } : {}),
    });
    return { messages: await this.views.build(page.rows), hasMore: page.hasMore };
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

const unusableAttachments = () =>
  fieldError('attachments', 'must be your own uploads, not yet sent in a message');

/** A message's type follows its attachments (SPEC §5): all images → IMAGE, and so on; mixed → FILE. */
function typeOfAttachments(files: readonly Attachment[]): Message['type'] {
  // SVG is text (and served as a download), not a picture: it makes a FILE message.
  const kinds = new Set(
    files.map((f) =>
      isPicture(f.mimeType) ? 'image' : f.mimeType.split('/')[0]!.replace('image', 'file'),
    ),
  );
  if (kinds.size === 1) {
    const [kind] = kinds;
    if (kind === 'image') return 'IMAGE';
    if (kind === 'audio') return 'AUDIO';
    if (kind === 'video') return 'VIDEO';
  }
  return 'FILE';
}
