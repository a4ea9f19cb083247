// "Is this user in this conversation?" for the events a socket sends many of (typing, reads),
// answered from the cache and forgotten the moment membership changes, so a removed participant
// is refused at once.
import type { EventBus } from '../events/event-bus.js';
import type { Cache } from '../infra/cache.js';
import type { ConversationRepository } from '../repositories/conversation.repository.js';
import type { ParticipantRepository } from '../repositories/participant.repository.js';
import { forbidden, notFound } from '../errors.js';

const TTL_MS = 30_000;
const key = (conversationId: string, userId: string) => `member:${conversationId}:${userId}`;

export class MembershipService {
  /** Counts every forget: a read that overlapped one is not cached. */
  private forgotten = 0;

  constructor(
    private readonly conversations: ConversationRepository,
    private readonly participants: ParticipantRepository,
    private readonly cache: Cache,
    events: EventBus,
  ) {
    const forget = (conversationId: string, userId: string) => {
      this.forgotten += 1;
      return this.cache.delete(key(conversationId, userId));
    };
    events.subscribe('participant.added', (e) => forget(e.conversationId, e.userId));
    events.subscribe('participant.removed', (e) => forget(e.conversationId, e.userId));
    events.subscribe('conversation.deleted', async (e) => {
      await Promise.all(e.participantIds.map((userId) => forget(e.conversationId, userId)));
    });
  }

  /** 404 when the conversation does not exist (or was deleted), 403 when the user is not in it. */
  async requireParticipant(conversationId: string, userId: string): Promise<void> {
    const cached = await this.cache.get<'member' | 'outsider' | 'missing'>(
      key(conversationId, userId),
    );
    let state = cached;
    if (!state) {
      const before = this.forgotten;
      const access = await this.conversations.getAccess(conversationId, userId);
      state = !access ? 'missing' : access.role ? 'member' : 'outsider';
      // A membership change forgotten while this read ran may be newer than what it read: then
      // the answer stands for this call only, and is not cached for the next 30 s.
      if (this.forgotten === before)
        await this.cache.set(key(conversationId, userId), state, TTL_MS);
    }
    if (state === 'missing') throw notFound('Conversation');
    if (state === 'outsider') throw forbidden('You are not a participant of this conversation');
  }

  conversationIdsOf(userId: string): Promise<string[]> {
    return this.participants.conversationIdsOf(userId);
  }
}
