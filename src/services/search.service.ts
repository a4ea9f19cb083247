// Message search in one conversation or across all of the caller's: ranked, paged, with a
// highlighted snippet. English words match their stems; Chinese, Japanese and Korean text
// matches as substrings through the bigram index. Bounded in cost so that one user's searches
// cannot stall others (SPEC §8): the routes rate-limit them per user, a user's searches run
// one at a time (SEARCH_CONCURRENCY_PER_USER), snippets come from a window of each message, and
// PostgreSQL cancels a statement at SEARCH_STATEMENT_TIMEOUT.
import { unavailable } from '../errors.js';
import type { SearchRepository } from '../repositories/search.repository.js';
import type { SearchQuery } from '../schemas/message.schemas.js';
import type { ConversationRepository } from '../repositories/conversation.repository.js';
import { parseSearch } from '../utils/search-terms.js';
import type { KeyedSemaphore } from '../utils/semaphore.js';
import { buildSnippet } from '../utils/snippet.js';
import { requireRole } from './access.js';
import type { Principal } from './session.service.js';
import type { MessageViews } from './views.js';

export class SearchService {
  /**
   * @param perUser how many of one user's searches run at once; the rest wait their turn, so a
   *   burst from one user occupies that many database slots, never the whole pool or the whole
   *   of PGlite's single connection
   */
  constructor(
    private readonly conversations: ConversationRepository,
    private readonly search: SearchRepository,
    private readonly views: MessageViews,
    private readonly perUser: KeyedSemaphore,
  ) {}

  async inConversation(principal: Principal, conversationId: string, query: SearchQuery) {
    requireRole(await this.conversations.getAccess(conversationId, principal.userId));
    return this.perUser.run(principal.userId, () => this.run(principal, query, conversationId));
  }

  async everywhere(principal: Principal, query: SearchQuery) {
    return this.perUser.run(principal.userId, () => this.run(principal, query));
  }

  private async run(principal: Principal, query: SearchQuery, conversationId?: string) {
    const parsed = parseSearch(query.q);
    const outcome = await this.search.search({
      userId: principal.userId,
      conversationId,
      terms: parsed,
      limit: query.limit,
      offset: (query.page - 1) * query.limit,
    });
    // The database's statement timeout (PostgreSQL): the query would have cost more than one
    // search may. 503, not 500: nothing is broken, and a narrower query will answer.
    if (outcome.timedOut) {
      throw unavailable('The search took too long; try more specific words or one conversation');
    }
    const { rows, hasMore } = outcome;
    const views = await this.views.build(rows.map((row) => row.message));
    return {
      items: rows.map((row, i) => ({
        message: views[i]!,
        conversationTitle: row.conversationTitle,
        snippet: buildSnippet(row.message.content, row.headline, parsed.cjkRuns),
        rank: row.rank,
      })),
      page: query.page,
      limit: query.limit,
      hasMore,
    };
  }
}
