// Conversations: create, list by activity, read, change, archive, delete (SPEC §5).
import type { ConversationSettings } from '../db/schema.js';
import type { EventBus } from '../events/event-bus.js';
import { AppError, notFound } from '../errors.js';
import type { ConversationRepository } from '../repositories/conversation.repository.js';
import type { ParticipantRepository } from '../repositories/participant.repository.js';
import type { UserRepository } from '../repositories/user.repository.js';
import type {
  CreateConversationBody,
  ListConversationsQuery,
  UpdateConversationBody,
} from '../schemas/conversation.schemas.js';
import { encodeCursor } from '../utils/cursor.js';
import { requireLockedRole, requireRole } from './access.js';
import type { AiPolicy } from './ai-policy.js';
import type { Principal } from './session.service.js';
import { toConversationFields, toParticipantView } from './views.js';

/** Who is connected now (PresenceService): a conversation's people show it from the start. */
export interface OnlineLookup {
  onlineAmong(userIds: readonly string[]): Promise<Set<string>>;
}

export class ConversationService {
  constructor(
    private readonly conversations: ConversationRepository,
    private readonly participants: ParticipantRepository,
    private readonly users: UserRepository,
    private readonly events: EventBus,
    /** The operator's AI ceilings: settings asking for more are a 400 (SPEC §8). */
    private readonly ai: AiPolicy,
    private readonly presence: OnlineLookup,
  ) {}

  async create(principal: Principal, body: CreateConversationBody) {
    this.ai.check(body.settings);
    const memberIds = [...new Set(body.participantIds ?? [])].filter(
      (id) => id !== principal.userId,
    );
    const existing = new Set(await this.users.existingIds(memberIds));
    const unknown = memberIds.filter((id) => !existing.has(id));
    if (unknown.length > 0) {
      throw new AppError('NOT_FOUND', 'User not found', { details: { userIds: unknown } });
    }
    const conversation = await this.conversations.create(
      {
        title: body.title,
        description: body.description,
        settings: withoutUndefined(body.settings ?? {}),
      },
      principal.userId,
      memberIds,
    );
    this.events.publish('conversation.created', {
      conversationId: conversation.id,
      participantIds: [principal.userId, ...memberIds],
      by: principal.userId,
    });
    return this.get(principal, conversation.id);
  }

  async list(principal: Principal, query: ListConversationsQuery) {
    const after = query.cursor && { activityAt: query.cursor.at, id: query.cursor.id };
    const rows = await this.conversations.listForUser(principal.userId, {
      archived: query.archived,
      limit: query.limit + 1,
      after,
    });
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return {
      items: page.map((row) => ({
        ...toConversationFields(row.conversation),
        myRole: row.role,
        unreadCount: row.unreadCount,
        lastMessage: row.lastMessage
          ? { ...row.lastMessage, createdAt: row.lastMessage.createdAt.toISOString() }
          : null,
      })),
      nextCursor:
        rows.length > query.limit && last
          ? encodeCursor({ at: last.activityAt, id: last.conversation.id })
          : null,
    };
  }

  async get(principal: Principal, conversationId: string) {
    const access = requireRole(
      await this.conversations.getAccess(conversationId, principal.userId),
    );
    const participants = await this.participants.list(conversationId);
    const online = await this.presence
      .onlineAmong(participants.map((p) => p.userId))
      // Presence is a hint beside the conversation: without Redis for a moment it reads as
      // offline, and user:online corrects it, rather than the conversation failing to open.
      .catch(() => new Set<string>());
    return {
      ...toConversationFields(access.conversation),
      myRole: access.role,
      participants: participants.map((p) => ({
        ...toParticipantView(p),
        online: online.has(p.userId),
      })),
    };
  }

  async update(principal: Principal, conversationId: string, body: UpdateConversationBody) {
    const access = requireRole(
      await this.conversations.getAccess(conversationId, principal.userId),
      'ADMIN',
    );
    this.ai.check(body.settings);
    const patch: Parameters<ConversationRepository['update']>[1] = {};
    if (body.title !== undefined) patch.title = body.title;
    if (body.description !== undefined) patch.description = body.description;
    if (body.settings !== undefined) {
      patch.settings = mergeSettings(access.conversation.settings ?? {}, body.settings);
    }
    await this.conversations.update(conversationId, patch);
    this.events.publish('conversation.updated', {
      conversationId,
      changes: Object.keys(patch),
      by: principal.userId,
    });
    return this.get(principal, conversationId);
  }

  async setArchived(principal: Principal, conversationId: string, archived: boolean) {
    requireRole(await this.conversations.getAccess(conversationId, principal.userId), 'ADMIN');
    await this.conversations.update(conversationId, { isArchived: archived });
    this.events.publish('conversation.updated', {
      conversationId,
      changes: ['isArchived'],
      by: principal.userId,
    });
    return this.get(principal, conversationId);
  }

  /**
   * Soft delete: the conversation vanishes from every route, for everyone. Under the
   * conversation's lock like every membership change, so the event names exactly the people in
   * it at that moment, and a deletion racing the last one out happens (and is announced) once.
   */
  async remove(principal: Principal, conversationId: string) {
    const participantIds = await this.participants.changeMembership(
      conversationId,
      async (members) => {
        await requireLockedRole(members, principal.userId, 'OWNER');
        const ids = await members.userIds();
        await members.softDeleteConversation();
        return ids;
      },
    );
    if (!participantIds) throw notFound('Conversation');
    this.events.publish('conversation.deleted', {
      conversationId,
      participantIds,
      by: principal.userId,
    });
    return { id: conversationId, deleted: true };
  }
}

/** A settings patch: values replace, null removes a key. */
function mergeSettings(
  current: ConversationSettings,
  patch: NonNullable<UpdateConversationBody['settings']>,
): ConversationSettings {
  const merged: Record<string, unknown> = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else if (value !== undefined) merged[key] = value;
  }
  return merged;
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
