// Emoji reactions on messages: adding twice is not an error, removing what is not there neither.
import type { EventBus } from '../events/event-bus.js';
import { notFound } from '../errors.js';
import type { MessageRepository } from '../repositories/message.repository.js';
import type { ReactionRepository } from '../repositories/reaction.repository.js';
import { requireRole } from './access.js';
import type { Principal } from './session.service.js';

export class ReactionService {
  constructor(
    private readonly messages: MessageRepository,
    private readonly reactions: ReactionRepository,
    private readonly events: EventBus,
  ) {}

  async add(principal: Principal, messageId: string, emoji: string) {
    const { message } = await this.liveMessage(principal, messageId);
    const { reaction, created } = await this.reactions.add(messageId, principal.userId, emoji);
    if (created) {
      this.events.publish('reaction.added', {
        conversationId: message.conversationId,
        messageId,
        userId: principal.userId,
        emoji,
      });
    }
    return {
      messageId,
      userId: reaction.userId,
      emoji: reaction.emoji,
      createdAt: reaction.createdAt.toISOString(),
    };
  }

  async remove(principal: Principal, messageId: string, emoji: string) {
    const { message } = await this.liveMessage(principal, messageId);
    const removed = await this.reactions.remove(messageId, principal.userId, emoji);
    if (removed) {
      this.events.publish('reaction.removed', {
        conversationId: message.conversationId,
        messageId,
        userId: principal.userId,
        emoji,
      });
    }
    return { messageId, emoji, removed };
  }

  private async liveMessage(principal: Principal, messageId: string) {
    const access = requireRole(
      await this.messages.getAccess(messageId, principal.userId),
      'MEMBER',
      'Message',
    );
    if (access.message.isDeleted) throw notFound('Message');
    return access;
  }
}
