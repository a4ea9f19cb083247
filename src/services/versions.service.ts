// Versions of a message (docs/api.md "Branches"): regenerate an AI answer, or edit-and-resend
// one's own question. Each makes an alternative of the original, which leaves the active branch
// (kept under `branch=all`), and starts an answer; both need the AI (409 where it is off), count
// against the sender's message budget and answer cap, and store nothing when refused. And
// switching back: choosing which version is on the active branch.
import type { z } from 'zod';
import type { EventBus } from '../events/event-bus.js';
import { AppError, conflict, forbidden, notFound, rateLimited, fieldError } from '../errors.js';
import type { Limiter } from '../infra/rate-limiter.js';
import type { ConversationRepository } from '../repositories/conversation.repository.js';
import type { MessagePosition, MessageRepository } from '../repositories/message.repository.js';
import type { VersionRepository } from '../repositories/version.repository.js';
import type { BranchSwitch as BranchSwitchSchema } from '../schemas/message.schemas.js';
import { requireRole } from './access.js';
import type { GenerationRef, GenerationService } from './generation.service.js';
import type { MessageService, SendResult, Stored } from './message.service.js';
import type { Principal } from './session.service.js';

/** What a switch changed: the messages that joined the active branch, and those that left it. */
export type BranchSwitch = z.output<typeof BranchSwitchSchema>;

export class VersionsService {
  constructor(
    private readonly conversations: ConversationRepository,
    private readonly messageRows: MessageRepository,
    private readonly messages: MessageService,
    private readonly generations: GenerationService,
    /** The same budget sends use (30 a minute per user). */
    private readonly sendLimiter: Limiter,
    private readonly versionRows: VersionRepository,
    private readonly events: EventBus,
  ) {}

  /**
   * Switching between branches (SPEC §4, §9): makes this version the chosen one of its group, so
   * the active branch runs through it. Any participant may, as any participant may regenerate:
   * the branch is the conversation's, shared by everyone in it. 409 for a message without other
   * versions, and while an answer that would join or leave the branch is still being written.
   */
  async activate(principal: Principal, messageId: string): Promise<BranchSwitch> {
    const { message } = requireRole(
      await this.messageRows.getAccess(messageId, principal.userId),
      'MEMBER',
      'Message',
    );
    if (message.isDeleted) throw notFound('Message');
    const result = await this.versionRows.activate(messageId);
    if (!result) throw notFound('Message');
    if (!result.ok) {
      throw conflict(
        result.reason === 'not-a-version'
          ? 'This message has no other versions to switch to'
          : 'An AI answer on the branch being switched is still being written; stop it or wait for it to end',
      );
    }
    const change = {
      conversationId: message.conversationId,
      messageId,
      active: result.joined,
      superseded: result.left,
    };
    // Choosing the version already active changes nothing, and tells no one.
    if (change.active.length || change.superseded.length)
      this.events.publish('branch.switched', { ...change, by: principal.userId });
    return change;
  }

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
