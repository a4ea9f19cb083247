// "Is this user in this conversation?" for the events a socket sends many of (typing, reads),
// answered from the cache and forgotten the moment membership changes, so a removed participant
// is refused at once — on every instance, the cache being Redis when the app scales out.
import type { EventBus } from '../events/event-bus.js';
import type { Cache } from '../infra/cache.js';
import type { ConversationRepository } from '../repositories/conversation.repository.js';
import type { ParticipantRepository } from '../repositories/participant.repository.js';
import { forbidden, notFound } from '../errors.js';

const TTL_MS = 30_000;
/**
 * A forgotten answer is replaced by this mark for a while rather than deleted: a read that began
 * before the change (on any instance) and ends after it cannot cache what it read over the mark
 * (it writes with `add`), so the stale answer is never served.
 */
const FORGOTTEN = 'forgotten';
const FORGOTTEN_TTL_MS = 10_000;
const key = (conversationId: string, userId: string) => `member:${conversationId}:${userId}`;

export class MembershipService {
  constructor(
    private readonly conversations: ConversationRepository,
    private readonly participants: ParticipantRepository,
    private readonly cache: Cache,
    events: EventBus,
  ) {
    const forget = (conversationId: string, userId: string) =>
      this.cache.set(key(conversationId, userId), FORGOTTEN, FORGOTTEN_TTL_MS);
    events.subscribe('participant.added', (e) => forget(e.conversationId, e.userId));
    events.subscribe('participant.removed', (e) => forget(e.conversationId, e.userId));
    events.subscribe('conversation.deleted', async (e) => {
      await Promise.all(e.participantIds.map((userId) => forget(e.conversationId, userId)));
    });
  }

  /** 404 when the conversation does not exist (or was deleted), 403 when the user is not in it. */
  async requireParticipant(conversationId: string, userId: string): Promise<void> {
    const cached = await this.cache.get<'member' | 'outsider' | 'missing' | typeof FORGOTTEN>(
      key(conversationId, userId),
    );
    let state = cached === FORGOTTEN ? undefined : cached;
    if (!state) {
      const access = await this.conversations.getAccess(conversationId, userId);
      state = !access ? 'missing' : access.role ? 'member' : 'outsider';
      // Cached only where nothing is: a change forgotten while this read ran left its mark,
      // and what this read may be older than the change.
      await this.cache.add(key(conversationId, userId), state, TTL_MS);
    }
    if (state === 'missing') throw notFound('Conversation');
    if (state === 'outsider') throw forbidden('You are not a participant of this conversation');
  }

  conversationIdsOf(userId: string): Promise<string[]> {
    return this.participants.conversationIdsOf(userId);
  }
}
