// Search cannot stall others (issue 8, acceptance 10): searches are rate-limited per user
// (tunable), snippets of long messages come from a bounded window of the text (and still show a
// match far into it), and PostgreSQL cancels a search statement at SEARCH_STATEMENT_TIMEOUT,
// which the caller gets as 503 UNAVAILABLE, never as a 500.
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { isStatementTimeout } from '../../src/db/errors.js';
import {
  createConversation,
  registerUser,
  sendMessage,
  type MessageData,
  type RegisteredUser,
} from '../factories.js';
import type { ApiResponse, Envelope } from '../support/api-client.js';
import { openTestDatabase } from '../support/database.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { selectRows } from '../support/sql.js';

interface Results {
  items: Array<{ message: MessageData; snippet: string }>;
}

const onPostgres = inject('dbKind') === 'postgres';
// Tests of one database's behaviour are defined only in that database's run (not reported as
// skipped in the other).
const onlyWhere = (condition: boolean) =>
  condition ? it : ((() => undefined) as unknown as typeof it);

function search(
  server: TestServer,
  user: RegisteredUser,
  q: string,
  conversationId?: string,
): Promise<ApiResponse<Envelope<Results>>> {
  const base = conversationId
    ? `/api/chat/conversations/${conversationId}/search`
    : '/api/chat/search';
  return server.api.get<Envelope<Results>>(`${base}?q=${encodeURIComponent(q)}`, {
    token: user.accessToken,
  });
}

describe('rate limit per user (SEARCH_RATE_LIMIT, SEARCH_RATE_WINDOW)', () => {
  let server: TestServer;
  afterEach(async () => {
    await server.close();
  });

  it('lets exactly the limit through when searches arrive at once, on both routes together', async () => {
    server = await startTestServer({ SEARCH_RATE_LIMIT: '5', SEARCH_RATE_WINDOW: '1m' });
    const [me, other] = await Promise.all([registerUser(server.api), registerUser(server.api)]);
    const room = await createConversation(server.api, me);
    await sendMessage(server.api, me, room.id, 'searchable words');

    const responses = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        search(server, me, 'words', i % 2 === 0 ? room.id : undefined),
      ),
    );
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    for (const refused of responses.filter((r) => r.status === 429)) {
      expect(refused.body).toMatchObject({ success: false, code: 'RATE_LIMITED' });
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
    }
    // Counted before the query is read: even a request that would be a 400 is refused.
    expect((await search(server, me, '')).status).toBe(429);
    // Per user: someone else searches on.
    expect((await search(server, other, 'words')).status).toBe(200);
  });
});

/** Seeded filler prose without the words the tests look for, with tokens the parser splits. */
function filler(chars: number, seed = 1): string {
  const words = (
    'alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november ' +
    'oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu the of and'
  ).split(' ');
  // Shapes the position estimate must count as PostgreSQL's parser does (or nearly).
  const odd = [
    'state-of-the-art',
    'e-mail',
    '2026-11-24',
    '3.14',
    '1,000',
    'x@example.com',
    'https://example.com/a/b?x=1&y=2',
    "don't",
    '<b>bold</b>',
    '&amp;',
    'snake_case',
    'emoji😀here',
    'naïve',
    'C++',
    'v1.2.3',
    'abc-12',
    '/usr/lib/file.so',
  ];
  let state = seed;
  const next = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  const parts: string[] = [];
  let length = 0;
  while (length < chars) {
    const word =
      next() < 0.1
        ? odd[Math.floor(next() * odd.length)]!
        : words[Math.floor(next() * words.length)]!;
    const part = `${word}${next() < 0.08 ? '.' : ''} `;
    parts.push(part);
    length += [...part].length; // characters: the emoji is two UTF-16 units
  }
  return [...parts.join('')].slice(0, chars).join('');
}

/** A 32,000-character message (the most a message may hold): `head`, filler, then `tail`. */
const longMessage = (head: string, tail: string, seed: number) =>
  `${head} ${filler(32_000 - head.length - tail.length - 2, seed)} ${tail}`;
const characters = (text: string) => [...text].length;
const CJK_MESSAGE = `Opening words. ${filler(6_000, 5)} the 会议 is at noon.`;

describe('snippets of long messages', () => {
  let server: TestServer;
  let me: RegisteredUser;
  let roomId: string;

  beforeAll(async () => {
    server = await startTestServer({ SEARCH_RATE_LIMIT: '100000' });
    me = await registerUser(server.api);
    roomId = (await createConversation(server.api, me)).id;
    const messages = [
      longMessage('Opening words about an aardvark here.', 'closing words.', 1),
      longMessage('Opening words.', 'and at the very end a pangolin appears.', 2),
      longMessage('Opening words.', 'the last runners kept running home.', 3),
      longMessage('Opening words.', 'we met by the quiet harbour at dusk.', 4),
    ];
    for (const content of messages) {
      expect(characters(content)).toBe(32_000);
      await sendMessage(server.api, me, roomId, content);
    }
    // Shorter: indexing CJK text costs time quadratic in the message's length (migration 0001).
    await sendMessage(server.api, me, roomId, CJK_MESSAGE);
  }, 60_000);
  afterAll(async () => {
    await server.close();
  });

  async function snippetFor(q: string, length = 32_000): Promise<string> {
    const response = await search(server, me, q, roomId);
    expect(response.status, response.text).toBe(200);
    expect(response.body.data!.items).toHaveLength(1);
    const [hit] = response.body.data!.items;
    expect(characters(hit!.message.content!)).toBe(length);
    return hit!.snippet;
  }

  it('shows a match at the start of a 32,000-character message, in a short snippet', async () => {
    const snippet = await snippetFor('aardvark');
    expect(snippet).toContain('<mark>aardvark</mark>');
    expect(snippet.length).toBeLessThan(1_000);
  });

  it('shows a match at the very end: the window starts just before the first match', async () => {
    const snippet = await snippetFor('pangolin');
    expect(snippet).toContain('at the very end a <mark>pangolin</mark> appears');
    expect(snippet.length).toBeLessThan(1_000);
    expect(snippet).not.toContain('Opening');
  });

  it('shows a CJK match far into a long message, alone or with English words', async () => {
    const length = characters(CJK_MESSAGE);
    const mixed = await snippetFor('noon 会议', length);
    expect(mixed).toContain('the <mark>会议</mark> is at <mark>noon</mark>');
    // "the" is a stop word: only 会议 is searched, and the text around it is the snippet.
    const alone = await snippetFor('the 会议', length);
    expect(alone).toContain('the <mark>会议</mark> is at noon.');
    for (const snippet of [mixed, alone]) expect(snippet).not.toContain('Opening');
  });

  it('finds the window by stems and phrases too', async () => {
    expect(await snippetFor('run')).toContain('<mark>running</mark> home');
    const phrase = await snippetFor('"quiet harbour"');
    expect(phrase).toContain('<mark>quiet</mark> <mark>harbour</mark>');
  });
});

describe('statement timeout (SEARCH_STATEMENT_TIMEOUT)', () => {
  onlyWhere(onPostgres)(
    'PostgreSQL: cancels a statement at the timeout, for that transaction only',
    async () => {
      const { database, dispose } = await openTestDatabase();
      try {
        const started = performance.now();
        const error: unknown = await database
          .withStatementTimeout(100, (db) => db.execute(sql`select pg_sleep(5)`))
          .catch((e: unknown) => e);
        expect(isStatementTimeout(error)).toBe(true);
        expect(performance.now() - started).toBeLessThan(2_000);

        const inside = await database.withStatementTimeout(250, (db) =>
          selectRows<{ statement_timeout: string }>(db, sql`show statement_timeout`),
        );
        expect(inside[0]!.statement_timeout).toBe('250ms');
        // SET LOCAL ended with the transaction: every connection of the pool is back to none.
        const outside = await Promise.all(
          Array.from({ length: 10 }, () =>
            selectRows<{ statement_timeout: string }>(database.db, sql`show statement_timeout`),
          ),
        );
        expect(new Set(outside.map((rows) => rows[0]!.statement_timeout))).toEqual(new Set(['0']));
      } finally {
        await dispose();
      }
    },
  );

  onlyWhere(onPostgres)(
    'PostgreSQL: a search past the timeout answers 503 UNAVAILABLE, and the next one works',
    async () => {
      const server = await startTestServer({
        SEARCH_RATE_LIMIT: '100000',
        SEARCH_STATEMENT_TIMEOUT: '300ms',
      });
      try {
        const me = await registerUser(server.api);
        const room = await createConversation(server.api, me);
        await sendMessage(server.api, me, room.id, 'words to find');
        // pg_sleep cannot be reached through the API; a lock can: the search statement waits
        // for it, and statement_timeout counts the wait.
        const started = performance.now();
        const blocked = await server.container.database.db.transaction(async (tx) => {
          await tx.execute(sql`lock table messages in access exclusive mode`);
          return search(server, me, 'words', room.id);
        });
        expect(blocked.status, blocked.text).toBe(503);
        expect(blocked.body).toMatchObject({ success: false, code: 'UNAVAILABLE' });
        expect(blocked.body.error).toMatch(/took too long/);
        expect(performance.now() - started).toBeLessThan(5_000);

        const after = await search(server, me, 'words', room.id);
        expect(after.status).toBe(200);
        expect(after.body.data!.items).toHaveLength(1);
      } finally {
        await server.close();
      }
    },
  );

  onlyWhere(!onPostgres)(
    'PGlite: has no timer to interrupt a statement, so the work runs as given',
    async () => {
      const { database, dispose } = await openTestDatabase();
      try {
        const rows = await database.withStatementTimeout(1, (db) =>
          selectRows<{ n: number }>(
            db,
            sql`select count(*)::int as n from generate_series(1, 1e5)`,
          ),
        );
        expect(rows[0]!.n).toBe(100_000);
      } finally {
        await dispose();
      }
    },
  );
});
