// Full-text search over messages: English stems and CJK bigrams in one GIN-indexed tsvector
// (see migration 0001). Every piece of the user's text reaches SQL as a bound parameter through
// websearch_to_tsquery / phraseto_tsquery, which accept any input, so no query syntax can
// break the statement.
import { and, desc, eq, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { conversationParticipants, conversations, messages, type Message } from '../db/schema.js';
import { MARK_END, MARK_START } from '../utils/snippet.js';
import { messageColumns } from './message-columns.js';

/** What to look for, already split by the service (utils/search-terms.ts). */
export interface SearchTerms {
  /** Non-CJK text, parsed like a web search box (quotes, OR, -word). */
  words: string;
  /** Each CJK run of two or more characters, as its space-separated bigrams. */
  cjkBigrams: string[];
  /** Each single CJK character (matched as a prefix of the indexed bigrams). */
  cjkChars: string[];
}

export interface SearchRow {
  message: Message;
  conversationTitle: string;
  rank: number;
  /** ts_headline of the English words with U+E000/U+E001 around matches, when there are words. */
  headline: string | null;
}

const HEADLINE_OPTIONS = `StartSel=${MARK_START}, StopSel=${MARK_END}, MaxWords=35, MinWords=15, ShortWord=2, MaxFragments=2, FragmentDelimiter=" … "`;

function tsquery(terms: SearchTerms): SQL | undefined {
  const parts: SQL[] = [];
  if (terms.words) parts.push(sql`websearch_to_tsquery('english', ${terms.words})`);
  for (const bigrams of terms.cjkBigrams) parts.push(sql`phraseto_tsquery('simple', ${bigrams})`);
  for (const char of terms.cjkChars) {
    parts.push(sql`(phraseto_tsquery('simple', ${char})::text || ':*')::tsquery`);
  }
  return parts.length ? sql`(${sql.join(parts, sql` && `)})` : undefined;
}

export class SearchRepository {
  constructor(private readonly db: Db) {}

  /**
   * Live messages matching every term, best first, in one conversation or in all of the
   * user's live conversations. Fetches one row past the page to tell whether more exist.
   */
  async search(options: {
    userId: string;
    conversationId?: string | undefined;
    terms: SearchTerms;
    limit: number;
    offset: number;
  }): Promise<{ rows: SearchRow[]; hasMore: boolean }> {
    const query = tsquery(options.terms);
    if (!query) return { rows: [], hasMore: false };
    const m = messages;
    const scope = options.conversationId
      ? eq(m.conversationId, options.conversationId)
      : sql`${m.conversationId} in (select ${conversationParticipants.conversationId} from ${conversationParticipants} where ${conversationParticipants.userId} = ${options.userId})`;
    const rank = sql<number>`ts_rank_cd(${m.searchVector}, ${query})`;
    const ranked = this.db
      .select({ id: m.id, rank: rank.as('rank'), createdAt: m.createdAt })
      .from(m)
      .innerJoin(
        conversations,
        and(eq(conversations.id, m.conversationId), eq(conversations.isDeleted, false)),
      )
      .where(and(scope, eq(m.isDeleted, false), sql`${m.searchVector} @@ ${query}`))
      .orderBy(desc(rank), desc(m.createdAt), desc(m.id))
      .limit(options.limit + 1)
      .offset(options.offset)
      .as('ranked');
    // Headlines are costly (they re-parse the text), so only the page's rows get one.
    const headline = options.terms.words
      ? sql<string>`ts_headline('english', translate(${m.content}, ${MARK_START + MARK_END}, ''), websearch_to_tsquery('english', ${options.terms.words}), ${HEADLINE_OPTIONS})`
      : sql<null>`null`;
    const rows = await this.db
      .select({
        message: messageColumns,
        conversationTitle: conversations.title,
        rank: ranked.rank,
        headline,
      })
      .from(ranked)
      .innerJoin(m, eq(m.id, ranked.id))
      .innerJoin(conversations, eq(conversations.id, m.conversationId))
      .orderBy(desc(ranked.rank), desc(ranked.createdAt), desc(ranked.id));
    return {
      rows: rows.slice(0, options.limit).map((row) => ({ ...row, rank: Number(row.rank) })),
      hasMore: rows.length > options.limit,
    };
  }
}
