// Message search in one conversation or across all of the caller's: ranked, paged, with a
// highlighted snippet. English words match their stems; Chinese, Japanese and Korean text
// matches as substrings through the bigram index.
import type { SearchRepository } from '../repositories/search.repository.js';
import type { SearchQuery } from '../schemas/message.schemas.js';
import type { ConversationRepository } from '../repositories/conversation.repository.js';
import { parseSearch } from '../utils/search-terms.js';
import { buildSnippet } from '../utils/snippet.js';
import { requireRole } from './access.js';
import type { Principal } from './session.service.js';
import type { MessageViews } from './views.js';

export class SearchService {
  constructor(
    private readonly conversations: ConversationRepository,
    private readonly search: SearchRepository,
    private readonly views: MessageViews,
  ) {}

  async inConversation(principal: Principal, conversationId: string, query: SearchQuery) {
    requireRole(await this.conversations.getAccess(conversationId, principal.userId));
    return this.run(principal, query, conversationId);
  }

  async everywhere(principal: Principal, query: SearchQuery) {
    return this.run(principal, query);
  }

  private async run(principal: Principal, query: SearchQuery, conversationId?: string) {
    const parsed = parseSearch(query.q);
    const { rows, hasMore } = await this.search.search({
      userId: principal.userId,
      conversationId,
      terms: parsed,
      limit: query.limit,
      offset: (query.page - 1) * query.limit,
    });
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
