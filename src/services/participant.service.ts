// Membership and read marks: add, remove, leave (with ownership handed on), mark as read.
import type { ParticipantRole } from '../db/schema.js';
import type { EventBus } from '../events/event-bus.js';
import { conflict, forbidden, notFound, validationError } from '../errors.js';
import type { ConversationRepository } from '../repositories/conversation.repository.js';
import type { MessageRepository } from '../repositories/message.repository.js';
import type {
  LockedMembership,
  ParticipantRepository,
} from '../repositories/participant.repository.js';
import type { AddParticipantBody } from '../schemas/conversation.schemas.js';
import { atLeast, requireLockedRole, requireRole } from './access.js';
import type { Principal } from './session.service.js';

/** What a removal did, for the events published once it is committed. */
interface Removal {
  /** Who became OWNER because the conversation had none left, if anyone. */
  newOwnerId: string | undefined;
  /** The removed participant was the OWNER. */
  wasOwner: boolean;
  /** The conversation was deleted: nobody is left in it. */
  deleted: boolean;
}

export class ParticipantService {
  constructor(
    private readonly conversations: ConversationRepository,
    private readonly participants: ParticipantRepository,
    private readonly messages: MessageRepository,
    private readonly events: EventBus,
  ) {}

  /**
   * OWNER or ADMIN adds members; only the OWNER adds admins. The adder's role is checked under
   * the conversation's lock, so someone removed (or an owner who left) a moment earlier cannot
   * still add.
   */
  async add(principal: Principal, conversationId: string, body: AddParticipantBody) {
    const added = await this.participants.changeMembership(conversationId, async (members) => {
      const adderRole = await requireLockedRole(members, principal.userId, 'ADMIN');
      if (body.role === 'ADMIN' && adderRole !== 'OWNER') {
        throw forbidden('Only the conversation owner can add admins');
      }
      if (!(await members.userExists(body.userId))) throw notFound('User');
      if (!(await members.add(body.userId, body.role))) {
        throw conflict('User is already a participant');
      }
      return { conversationId, userId: body.userId, role: body.role };
    });
    if (!added) throw notFound('Conversation');
    this.events.publish('participant.added', { ...added, by: principal.userId });
    return added;
  }

  /**
   * Removes a participant. Anyone may remove themselves (leave); the OWNER may remove anyone,
   * an ADMIN only members. One transaction under the conversation's lock checks the caller's
   * role, removes, and keeps the invariant (see `keepOwned`). Removals of one conversation thus
   * run one after another, each seeing the previous one's result.
   */
  async remove(principal: Principal, conversationId: string, userId: string) {
    const leaving = userId === principal.userId;
    const removal = await this.participants.changeMembership(
      conversationId,
      async (members): Promise<Removal> => {
        const removedRole = await checkRemoval(members, principal.userId, userId);
        await members.remove(userId);
        return { ...(await keepOwned(members)), wasOwner: removedRole === 'OWNER' };
      },
    );
    if (!removal) throw notFound('Conversation');
    if (removal.deleted) {
      // Only the last one in can empty it, by leaving: they were its participants.
      this.events.publish('conversation.deleted', {
        conversationId,
        participantIds: [userId],
        by: principal.userId,
      });
    }
    this.announceRemoval(
      conversationId,
      userId,
      principal.userId,
      leaving ? 'left' : 'removed',
      removal,
    );
    return { conversationId, userId, removed: true };
  }

  private announceRemoval(
    conversationId: string,
    userId: string,
    by: string,
    reason: 'left' | 'removed',
    removal: Removal,
  ): void {
    this.events.publish('participant.removed', { conversationId, userId, by, reason });
    if (removal.newOwnerId) {
      this.events.publish('ownership.transferred', {
        conversationId,
        ownerId: removal.newOwnerId,
        previousOwnerId: removal.wasOwner ? userId : null,
        by,
      });
    }
  }

  /**
   * Takes a user whose account is being deleted out of a conversation, under its lock, keeping the
   * one-OWNER rule as a leave does (ownership passes on). Where they were the only one in it, the
   * conversation is deleted instead and their participant row kept: account deletion then removes
   * such conversations for good (AccountRepository.deleteUser), and finds them again if it has to
   * start over. Nothing happens when they are no longer in it.
   */
  async departForDeletion(userId: string, conversationId: string): Promise<void> {
    const departure = await this.participants.changeMembership(
      conversationId,
      async (members): Promise<Removal | { absent: true }> => {
        const role = await members.roleOf(userId);
        if (!role) return { absent: true };
        const others = (await members.userIds()).filter((id) => id !== userId);
        if (others.length === 0) {
          await members.softDeleteConversation();
          return { newOwnerId: undefined, wasOwner: role === 'OWNER', deleted: true };
        }
        await members.remove(userId);
        return { ...(await keepOwned(members)), wasOwner: role === 'OWNER' };
      },
    );
    if (!departure || 'absent' in departure) return;
    if (departure.deleted) {
      this.events.publish('conversation.deleted', {
        conversationId,
        participantIds: [userId],
        by: userId,
      });
      return;
    }
    this.announceRemoval(conversationId, userId, userId, 'left', departure);
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

/** Checks that `callerId` may remove `userId`; returns the role of the one to be removed. */
async function checkRemoval(
  members: LockedMembership,
  callerId: string,
  userId: string,
): Promise<ParticipantRole> {
  const callerRole = await requireLockedRole(members, callerId);
  if (userId === callerId) return callerRole;
  if (!atLeast(callerRole, 'ADMIN')) {
    throw forbidden('Only the owner or admins can remove participants');
  }
  const role = await members.roleOf(userId);
  if (!role) throw notFound('Participant');
  if (role === 'OWNER' || (callerRole === 'ADMIN' && role !== 'MEMBER')) {
    throw forbidden('Admins can only remove members');
  }
  return role;
}

/**
 * The invariant after a removal: a conversation with people in it has exactly one OWNER (one
 * left without is handed to the longest-serving admin, else member); one with nobody is
 * deleted. Checked after every removal, not only the owner's: one indexed query, and it then
 * holds whatever state the conversation was in before.
 */
async function keepOwned(
  members: LockedMembership,
): Promise<Pick<Removal, 'newOwnerId' | 'deleted'>> {
  const head = await members.head();
  if (!head) {
    await members.softDeleteConversation();
    return { newOwnerId: undefined, deleted: true };
  }
  if (head.role === 'OWNER') return { newOwnerId: undefined, deleted: false };
  // The owner's row is already gone, so the one-owner index never sees two OWNERs.
  await members.setRole(head.userId, 'OWNER');
  return { newOwnerId: head.userId, deleted: false };
}
