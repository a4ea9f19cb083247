// Full-text search over messages: English stems and CJK bigrams in one GIN-indexed tsvector
// (see migration 0001). Every piece of the user's text reaches SQL as a bound parameter through
// websearch_to_tsquery / phraseto_tsquery, which accept any input, so no query syntax can
// break the statement.
import { and, desc, eq, sql, type SQL } from 'drizzle-orm';
import type { Database, Db } from '../db/client.js';
import { isStatementTimeout } from '../db/errors.js';
import { conversationParticipants, conversations, messages, type Message } from '../db/schema.js';
import { HEADLINE_WINDOW, MARK_END, MARK_START, headlineWindow } from '../utils/snippet.js';
import { messageColumns } from './message-columns.js';

/** What to look for, already split by the service (utils/search-terms.ts). */
export interface SearchTerms {
  /** Non-CJK text, parsed like a web search box (quotes, OR, -word). */
  words: string;
  /** Each CJK run of two or more characters, as its space-separated bigrams. */
  cjkBigrams: string[];
  /** Each single CJK character (matched as a prefix of the indexed bigrams). */
  cjkChars: string[];
  /** Every CJK run as typed: where one first occurs can place a long message's snippet. */
  cjkRuns: string[];
}

export interface SearchRow {
  message: Message;
  conversationTitle: string;
  rank: number;
  /**
   * ts_headline of the English words with U+E000/U+E001 around matches, when there are words:
   * of a window of the message around its first match (utils/snippet.ts headlineWindow).
   */
  headline: string | null;
}

/** A page of results, or the news that PostgreSQL cancelled a statement at its timeout. */
export type SearchOutcome =
  { timedOut: false; rows: SearchRow[]; hasMore: boolean } | { timedOut: true };

export interface SearchOptions {
  userId: string;
  conversationId?: string | undefined;
  terms: SearchTerms;
  limit: number;
  offset: number;
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

/** The smallest position of any of the query's words in a message's English search vector. */
function firstMatch(words: string): SQL<number | null> {
  const m = messages;
  // Weight A marks the query's lexemes (the stored vector is all D) and ts_filter keeps only
  // them, so only their positions are unnested, not every word of a long message.
  const own = sql`ts_filter(setweight(${m.searchVector}, 'A', tsvector_to_array(to_tsvector('english', ${words}))), '{a}')`;
  // Short messages are given to ts_headline whole; only long ones need a window. octet_length
  // reads the stored size without decompressing the text, and a text has at least as many
  // UTF-8 bytes as the UTF-16 units headlineWindow counts.
  return sql<number | null>`case when octet_length(${m.content}) > ${HEADLINE_WINDOW} then (
    select min(p) from unnest(${own}) as u(lexeme, positions, weights), unnest(u.positions) as p
  ) end`;
}

export class SearchRepository {
  /** @param timeoutMs bounds each search statement on PostgreSQL (Database.withStatementTimeout) */
  constructor(
    private readonly database: Database,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Live messages matching every term, best first, in one conversation or in all of the
   * user's live conversations, each with its headline. Fetches one row past the page to tell
   * whether more exist.
   */
  async search(options: SearchOptions): Promise<SearchOutcome> {
    try {
      return await this.database.withStatementTimeout(this.timeoutMs, async (db) => {
        const { rows, hasMore } = await this.rank(db, options);
        const words = options.terms.words;
        const headlines = words
          ? await this.headlines(
              db,
              words,
              rows.map((row) =>
                headlineWindow(row.message.content, row.firstMatch, options.terms.cjkRuns),
              ),
            )
          : rows.map(() => null);
        return {
          timedOut: false as const,
          rows: rows.map(({ firstMatch: _, ...row }, i) => ({ ...row, headline: headlines[i]! })),
          hasMore,
        };
      });
    } catch (error) {
      if (isStatementTimeout(error)) return { timedOut: true };
      throw error;
    }
  }

  private async rank(db: Db, options: SearchOptions) {
    const query = tsquery(options.terms);
    if (!query) return { rows: [], hasMore: false };
    const m = messages;
    const scope = options.conversationId
      ? eq(m.conversationId, options.conversationId)
      : sql`${m.conversationId} in (select ${conversationParticipants.conversationId} from ${conversationParticipants} where ${conversationParticipants.userId} = ${options.userId})`;
    const rank = sql<number>`ts_rank_cd(${m.searchVector}, ${query})`;
    const ranked = db
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
    const rows = await db
      .select({
        message: messageColumns,
        conversationTitle: conversations.title,
        rank: ranked.rank,
        firstMatch: options.terms.words ? firstMatch(options.terms.words) : sql<null>`null`,
      })
      .from(ranked)
      .innerJoin(m, eq(m.id, ranked.id))
      .innerJoin(conversations, eq(conversations.id, m.conversationId))
      .orderBy(desc(ranked.rank), desc(ranked.createdAt), desc(ranked.id));
    return {
      rows: rows.slice(0, options.limit).map((row) => ({
        ...row,
        rank: Number(row.rank),
        firstMatch: row.firstMatch === null ? null : Number(row.firstMatch),
      })),
      hasMore: rows.length > options.limit,
    };
  }

  /** ts_headline of each text for the English words, in order; one statement for the page. */
  private async headlines(db: Db, words: string, texts: string[]): Promise<string[]> {
    if (texts.length === 0) return [];
    const values = sql.join(
      texts.map((text, i) => sql`(${i}::int, ${text}::text)`),
      sql`, `,
    );
    const result: unknown = await db.execute(sql`
      select ts_headline('english', t.text, websearch_to_tsquery('english', ${words}), ${HEADLINE_OPTIONS}) as headline
      from (values ${values}) as t(i, text) order by t.i`);
    return (result as { rows: Array<{ headline: string }> }).rows.map((row) => row.headline);
  }
}
