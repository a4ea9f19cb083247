// Versions of a message (docs/api.md "Branches"): regenerate an AI answer, or edit-and-resend
// one's own question. Each makes an alternative of the original, which leaves the active branch
// (kept under `branch=all`), and starts an answer; both need the AI (409 where it is off), count
// against the sender's message budget and answer cap, and store nothing when refused.
import { AppError, forbidden, notFound, rateLimited, fieldError } from '../errors.js';
import type { Limiter } from '../infra/rate-limiter.js';
import type { ConversationRepository } from '../repositories/conversation.repository.js';
import type { MessagePosition, MessageRepository } from '../repositories/message.repository.js';
import { requireRole } from './access.js';
import type { GenerationRef, GenerationService } from './generation.service.js';
import type { MessageService, SendResult, Stored } from './message.service.js';
import type { Principal } from './session.service.js';

export class VersionsService {
  constructor(
    private readonly conversations: ConversationRepository,
    private readonly messageRows: MessageRepository,
    private readonly messages: MessageService,
    private readonly generations: GenerationService,
    /** The same budget sends use (30 a minute per user). */
    private readonly sendLimiter: Limiter,
  ) {}

  /** Edit-and-resend (SPEC §5): a new version of one's own question, and an answer to it. */
  async editBranch(principal: Principal, messageId: string, content: string): Promise<SendResult> {
    const { message } = requireRole(
      await this.messageRows.getAccess(messageId, principal.userId),
      'MEMBER',
      'Message',
    );
    if (message.isDeleted) throw notFound('Message');
    if (message.role !== 'USER') throw fieldError('messageId', 'must be a user message');
    if (message.userId !== principal.userId)
      throw forbidden('Only the author can edit-and-resend a message');
    const { conversationId } = message;
    const settings = await this.settingsOf(principal, conversationId);
    const ticket = await this.generations.reserveOrRefuse(principal.userId, settings);
    let sent: Stored;
    try {
      await this.spendBudget(principal.userId);
      sent = await this.messages.store(
        principal,
        conversationId,
        {
          content,
          type: message.type === 'CODE' || message.type === 'MARKDOWN' ? message.type : 'TEXT',
          ...(message.parentId ? { parentId: message.parentId } : {}),
        },
        message.id,
      );
    } catch (error) {
      ticket.release();
      throw error;
    }
    const generation = await this.generations.answer(
      ticket,
      { id: sent.message.id, conversationId, createdAt: new Date(sent.message.createdAt) },
      sent.settings ?? settings,
    );
    return { message: sent.message, replayed: false, generation };
  }

  /** A new answer to the same question, a version of this one. */
  async regenerate(
    principal: Principal,
    messageId: string,
  ): Promise<{ generation: GenerationRef }> {
    const { message } = requireRole(
      await this.messageRows.getAccess(messageId, principal.userId),
      'MEMBER',
      'Message',
    );
    if (message.isDeleted) throw notFound('Message');
    if (message.role !== 'ASSISTANT' || !message.parentId)
      throw fieldError('messageId', 'must be an AI answer');
    const settings = await this.settingsOf(principal, message.conversationId);
    const ticket = await this.generations.reserveOrRefuse(principal.userId, settings);
    let question: MessagePosition | undefined;
    try {
      await this.spendBudget(principal.userId);
      question = await this.messageRows.position(message.conversationId, message.parentId);
      if (!question) throw notFound('Question');
    } catch (error) {
      ticket.release();
      throw error;
    }
    const generation = await this.generations.answer(
      ticket,
      { id: question.id, conversationId: message.conversationId, createdAt: question.createdAt },
      settings,
      message.id,
    );
    // Nothing was changed when it could not start (the new version is written with its start).
    if (!generation)
      throw new AppError('INTERNAL', 'The AI answer could not be started; try again');
    return { generation };
  }

  /** The conversation's settings, for a participant. */
  private async settingsOf(principal: Principal, conversationId: string) {
    const access = requireRole(
      await this.conversations.getAccess(conversationId, principal.userId),
    );
    return access.conversation.settings;
  }

  /** Counts one message against the user's budget (30 a minute over HTTP and sockets). */
  private async spendBudget(userId: string): Promise<void> {
    const verdict = await this.sendLimiter.hit(userId);
    if (!verdict.allowed)
      throw rateLimited(Math.ceil(verdict.retryAfterMs / 1000), 'Too many messages; slow down');
  }
}
