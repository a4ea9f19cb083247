// Membership and read marks: add, remove, leave (with ownership handed on), mark as read.
import type { EventBus } from '../events/event-bus.js';
import { conflict, forbidden, notFound, validationError } from '../errors.js';
import type { ConversationRepository } from '../repositories/conversation.repository.js';
import type { MessageRepository } from '../repositories/message.repository.js';
import type { ParticipantRepository } from '../repositories/participant.repository.js';
import type { UserRepository } from '../repositories/user.repository.js';
import type { AddParticipantBody } from '../schemas/conversation.schemas.js';
import { atLeast, requireRole } from './access.js';
import type { Principal } from './session.service.js';

export class ParticipantService {
  constructor(
    private readonly conversations: ConversationRepository,
    private readonly participants: ParticipantRepository,
    private readonly messages: MessageRepository,
    private readonly users: UserRepository,
    private readonly events: EventBus,
  ) {}

  /** OWNER or ADMIN adds members; only the OWNER adds admins. */
  async add(principal: Principal, conversationId: string, body: AddParticipantBody) {
    const access = requireRole(
      await this.conversations.getAccess(conversationId, principal.userId),
      'ADMIN',
    );
    if (body.role === 'ADMIN' && access.role !== 'OWNER') {
      throw forbidden('Only the conversation owner can add admins');
    }
    if ((await this.users.existingIds([body.userId])).length === 0) throw notFound('User');
    if (!(await this.participants.add(conversationId, body.userId, body.role))) {
      throw conflict('User is already a participant');
    }
    this.events.publish('participant.added', {
      conversationId,
      userId: body.userId,
      role: body.role,
      by: principal.userId,
    });
    return { conversationId, userId: body.userId, role: body.role };
  }

  /**
   * Removes a participant. Anyone may remove themselves (leave); the OWNER may remove anyone,
   * an ADMIN only members. An owner who leaves hands ownership to the longest-serving admin
   * (else member); the last participant leaving deletes the conversation.
   */
  async remove(principal: Principal, conversationId: string, userId: string) {
    const access = requireRole(
      await this.conversations.getAccess(conversationId, principal.userId),
    );
    const leaving = userId === principal.userId;
    if (!leaving) {
      const targetRole = await this.participants.getRole(conversationId, userId);
      if (!atLeast(access.role, 'ADMIN'))
        throw forbidden('Only the owner or admins can remove participants');
      if (!targetRole) throw notFound('Participant');
      if (targetRole === 'OWNER' || (access.role === 'ADMIN' && targetRole !== 'MEMBER')) {
        throw forbidden('Admins can only remove members');
      }
    } else if (access.role === 'OWNER') {
      const successor = await this.participants.successor(conversationId, userId);
      if (successor) {
        await this.participants.setRole(conversationId, successor, 'OWNER');
      } else {
        await this.conversations.softDelete(conversationId);
        this.events.publish('conversation.deleted', {
          conversationId,
          participantIds: [userId],
          by: userId,
        });
      }
    }
    await this.participants.remove(conversationId, userId);
    this.events.publish('participant.removed', {
      conversationId,
      userId,
      by: principal.userId,
      reason: leaving ? 'left' : 'removed',
    });
    return { conversationId, userId, removed: true };
  }

  /** Moves the caller's read mark to now, or to a given message of the conversation. */
  async markRead(principal: Principal, conversationId: string, messageId?: string) {
    requireRole(await this.conversations.getAccess(conversationId, principal.userId));
    let at = new Date();
    if (messageId) {
      const position = await this.messages.position(conversationId, messageId);
      if (!position) {
        throw validationError('messageId is not a message of this conversation', [
          { path: 'messageId', message: 'is not a message of this conversation' },
        ]);
      }
      at = position.createdAt;
    }
    const lastReadAt = await this.participants.markRead(conversationId, principal.userId, at);
    if (!lastReadAt) throw notFound('Conversation');
    const receipt = {
      conversationId,
      userId: principal.userId,
      lastReadAt: lastReadAt.toISOString(),
      messageId: messageId ?? null,
    };
    this.events.publish('conversation.read', receipt);
    return receipt;
  }
}
