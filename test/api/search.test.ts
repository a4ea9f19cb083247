// Search (issue 3, acceptance 3): English stems, Chinese substrings, hostile input; ranked,
// highlighted, paged, scoped to the caller's conversations, served by the GIN index.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createConversation,
  registerUser,
  sendMessage,
  type MessageData,
  type RegisteredUser,
} from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { selectRows } from '../support/sql.js';

interface Hit {
  message: MessageData;
  conversationTitle: string;
  snippet: string;
  rank: number;
}
interface Results {
  items: Hit[];
  page: number;
  limit: number;
  hasMore: boolean;
}

let server: TestServer;
let me: RegisteredUser;
let stranger: RegisteredUser;
let roomId: string;
let otherRoomId: string;
let strangerRoomId: string;

const CORPUS = [
  'The runners were running quickly through the park',
  'I run every morning before work',
  '大家你好世界',
  '我们今天晚上吃什么？你好吗',
  'こんにちは世界、元気ですか',
  '안녕하세요 여러분',
  'Use <script>alert(1)</script> & "quotes" carefully when running code',
  'Nothing relevant here at all',
  'Mixed 你好 and hello in one line',
];

beforeAll(async () => {
  // Limits out of the way: this file is about what search finds (search-limits.test.ts: limits).
  server = await startTestServer({ MESSAGE_RATE_LIMIT: '100000', SEARCH_RATE_LIMIT: '100000' });
  [me, stranger] = await Promise.all([registerUser(server.api), registerUser(server.api)]);
  roomId = (await createConversation(server.api, me, { title: 'Room' })).id;
  otherRoomId = (await createConversation(server.api, me, { title: 'Other room' })).id;
  strangerRoomId = (await createConversation(server.api, stranger, { title: 'Private' })).id;
  for (const text of CORPUS) await sendMessage(server.api, me, roomId, text);
  await sendMessage(server.api, me, otherRoomId, 'running in the other room');
  await sendMessage(server.api, stranger, strangerRoomId, 'private running notes 你好');
}, 60_000);
afterAll(async () => {
  await server.close();
});

async function search(
  q: string,
  options: { scope?: string; user?: RegisteredUser; extra?: string } = {},
) {
  const base = options.scope
    ? `/api/chat/conversations/${options.scope}/search`
    : '/api/chat/search';
  return server.api.get<Envelope<Results>>(
    `${base}?q=${encodeURIComponent(q)}${options.extra ?? ''}`,
    { token: (options.user ?? me).accessToken },
  );
}

const contents = (results: Results) => results.items.map((hit) => hit.message.content);

describe('English', () => {
  it('matches words by their stems, ranked, with the match highlighted', async () => {
    const response = await search('run', { scope: roomId });
    expect(response.status).toBe(200);
    const found = contents(response.body.data!);
    expect(found).toEqual(
      expect.arrayContaining([
        'The runners were running quickly through the park',
        'I run every morning before work',
      ]),
    );
    expect(found).not.toContain('Nothing relevant here at all');
    const hit = response.body.data!.items.find((h) => h.message.content!.startsWith('I run'))!;
    expect(hit.snippet).toContain('<mark>run</mark>');
    const ranks = response.body.data!.items.map((h) => h.rank);
    expect(ranks).toEqual([...ranks].sort((a, b) => b - a));
  });

  it('escapes HTML in snippets: the only tags are the marks', async () => {
    const response = await search('carefully', { scope: roomId });
    const [hit] = response.body.data!.items;
    // PostgreSQL's headline drops what its parser reads as markup tags; the rest is escaped.
    expect(hit!.snippet).toContain('&amp; &quot;quotes&quot;');
    expect(hit!.snippet).toContain('<mark>carefully</mark>');
    expect(hit!.snippet.replace(/<\/?mark>/g, '')).not.toMatch(/[<>]/);
    // CJK-only snippets come from the raw text: escaped, never dropped.
    await sendMessage(server.api, me, otherRoomId, '<b>你好</b> & more');
    const cjk = await search('你好', { scope: otherRoomId });
    expect(cjk.body.data!.items[0]!.snippet).toBe(
      '&lt;b&gt;<mark>你好</mark>&lt;/b&gt; &amp; more',
    );
  });

  it('supports web-search syntax: phrases, OR and -exclusion', async () => {
    expect(contents((await search('"every morning"', { scope: roomId })).body.data!)).toEqual([
      'I run every morning before work',
    ]);
    const either = contents((await search('morning or park', { scope: roomId })).body.data!);
    expect(either).toHaveLength(2);
    const excluded = contents((await search('run -park', { scope: roomId })).body.data!);
    expect(excluded).toContain('I run every morning before work');
    expect(excluded).not.toContain('The runners were running quickly through the park');
  });
});

describe('Chinese, Japanese, Korean', () => {
  it('finds a two-character query inside a longer run: 你好 finds 大家你好世界', async () => {
    const found = contents((await search('你好', { scope: roomId })).body.data!);
    expect(found).toEqual(
      expect.arrayContaining([
        '大家你好世界',
        '我们今天晚上吃什么？你好吗',
        'Mixed 你好 and hello in one line',
      ]),
    );
    expect(found).toHaveLength(3);
  });

  it('highlights the Chinese match', async () => {
    const hit = (await search('你好', { scope: roomId })).body.data!.items.find(
      (h) => h.message.content === '大家你好世界',
    )!;
    expect(hit.snippet).toBe('大家<mark>你好</mark>世界');
  });

  it('matches longer substrings exactly, and not characters merely present apart', async () => {
    expect(contents((await search('你好世界', { scope: roomId })).body.data!)).toEqual([
      '大家你好世界',
    ]);
    expect(contents((await search('好世', { scope: roomId })).body.data!)).toEqual([
      '大家你好世界',
    ]);
    // 大 and 界 are both in 大家你好世界, but 大界 is not a substring of anything.
    expect(contents((await search('大界', { scope: roomId })).body.data!)).toEqual([]);
  });

  it('finds a single character, at the start, middle or end of a run', async () => {
    for (const char of ['大', '好', '界']) {
      expect(contents((await search(char, { scope: roomId })).body.data!), char).toContain(
        '大家你好世界',
      );
    }
  });

  it('works for Japanese and Korean, and for mixed queries', async () => {
    expect(contents((await search('世界', { scope: roomId })).body.data!)).toEqual(
      expect.arrayContaining(['大家你好世界', 'こんにちは世界、元気ですか']),
    );
    expect(contents((await search('元気', { scope: roomId })).body.data!)).toEqual([
      'こんにちは世界、元気ですか',
    ]);
    expect(contents((await search('여러분', { scope: roomId })).body.data!)).toEqual([
      '안녕하세요 여러분',
    ]);
    expect(contents((await search('hello 你好', { scope: roomId })).body.data!)).toEqual([
      'Mixed 你好 and hello in one line',
    ]);
  });
});

describe('hostile input', () => {
  const nasty = [
    "'",
    "''",
    '\\',
    '&',
    '|',
    '!',
    '!!!',
    ':*',
    '<->',
    '<2>',
    '(',
    ')',
    '((((',
    "run' & 'park",
    'run:* | !(x)',
    'a & | b',
    "'; drop table messages; --",
    '"',
    '"unclosed',
    '-',
    '--',
    'or',
    'the and of',
    '%',
    '_',
    '\u0000',
    '😀',
    'x'.repeat(200),
    '你'.repeat(200),
    '\uE000run\uE001',
  ];

  it('never breaks the query: every input answers 200 (or 400 when empty/oversized)', async () => {
    for (const q of nasty) {
      for (const scope of [roomId, undefined]) {
        const response = await search(q, { scope });
        expect([200, 400], `${JSON.stringify(q)} → ${response.status} ${response.text}`).toContain(
          response.status,
        );
        if (response.status === 200) expect(Array.isArray(response.body.data!.items)).toBe(true);
      }
    }
    const rows = await selectRows<{ n: number }>(
      server.container.database.db,
      sql`select count(*)::int as n from messages`,
    );
    expect(rows[0]!.n).toBeGreaterThan(10);
  });

  it('treats query syntax as text: run:* does not become a prefix search', async () => {
    const found = contents((await search("run' & 'park", { scope: roomId })).body.data!);
    expect(found).toEqual(['The runners were running quickly through the park']);
  });

  it('refuses an empty or too-long query with 400', async () => {
    expect((await search('', { scope: roomId })).status).toBe(400);
    expect((await search('   ', { scope: roomId })).status).toBe(400);
    expect((await search('x'.repeat(201), { scope: roomId })).status).toBe(400);
  });
});

describe('scope and paging', () => {
  it('searches all of my conversations, and never anyone else’s', async () => {
    const mine = (await search('running')).body.data!;
    expect(new Set(mine.items.map((h) => h.message.conversationId))).toEqual(
      new Set([roomId, otherRoomId]),
    );
    expect(
      mine.items.find((h) => h.message.conversationId === otherRoomId)!.conversationTitle,
    ).toBe('Other room');
    expect(JSON.stringify(mine)).not.toContain('private running notes');

    const theirs = (await search('running', { user: stranger })).body.data!;
    expect(contents(theirs)).toEqual(['private running notes 你好']);
    expect((await search('running', { user: stranger, scope: roomId })).status).toBe(403);
  });

  it('pages with page and limit, and says when there is more', async () => {
    const first = (await search('你好', { scope: roomId, extra: '&limit=2&page=1' })).body.data!;
    const second = (await search('你好', { scope: roomId, extra: '&limit=2&page=2' })).body.data!;
    expect(first).toMatchObject({ page: 1, limit: 2, hasMore: true });
    expect(second).toMatchObject({ page: 2, limit: 2, hasMore: false });
    expect(first.items).toHaveLength(2);
    expect(second.items).toHaveLength(1);
    const ids = [...first.items, ...second.items].map((h) => h.message.id);
    expect(new Set(ids).size).toBe(3);
    expect((await search('你好', { scope: roomId, extra: '&limit=51' })).status).toBe(400);
    expect((await search('你好', { scope: roomId, extra: '&page=0' })).status).toBe(400);
  });
});

describe('the index', () => {
  it('answers English and CJK queries from the GIN index on the search column', async () => {
    const db = server.container.database.db;
    for (const query of [
      sql`websearch_to_tsquery('english', 'running')`,
      sql`phraseto_tsquery('simple', '你好')`,
      sql`(phraseto_tsquery('simple', '界')::text || ':*')::tsquery`,
    ]) {
      const plan = await db.transaction(async (tx) => {
        await tx.execute(sql`set local enable_seqscan = off`);
        return selectRows<{ 'QUERY PLAN': string }>(
          tx,
          sql`explain select id from messages where search_vector @@ ${query}`,
        );
      });
      expect(plan.map((r) => r['QUERY PLAN']).join('\n')).toContain('messages_search_vector_idx');
    }
  });
});
