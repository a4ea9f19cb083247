// Keyset pagination of messages (issue 3, acceptance 2): with 1,000 messages, paging backwards
// and forwards visits each message exactly once, in order — including messages that share a
// timestamp, which a created_at-only cursor would skip or repeat.
import { createId } from '../../src/utils/ids.js';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createConversation,
  registerUser,
  type MessageData,
  type RegisteredUser,
} from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { FORGED_CURSORS } from '../support/forged-cursors.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { selectRows } from '../support/sql.js';

let server: TestServer;
let owner: RegisteredUser;
let conversationId: string;
/** Message ids in conversation order: (created_at, id). */
let expected: string[];

interface Page {
  messages: MessageData[];
  hasMore: boolean;
}

beforeAll(async () => {
  server = await startTestServer();
  owner = await registerUser(server.api);
  conversationId = (await createConversation(server.api, owner)).id;
  // 1,000 messages over 100 distinct milliseconds: ten share every timestamp.
  const base = Date.parse('2026-01-01T00:00:00.000Z');
  const rows = Array.from({ length: 1000 }, (_, i) => ({
    id: createId(),
    at: new Date(base + Math.floor(i / 10)).toISOString(),
    content: `message ${i}`,
  }));
  for (let i = 0; i < rows.length; i += 250) {
    const values = sql.join(
      rows
        .slice(i, i + 250)
        .map(
          (r) =>
            sql`(${r.id}, ${conversationId}, ${owner.user.id}, ${r.content}, 'USER', ${r.at}::timestamptz)`,
        ),
      sql`, `,
    );
    await server.container.database.db.execute(
      sql`insert into messages (id, conversation_id, user_id, content, role, created_at) values ${values}`,
    );
  }
  const ordered = await selectRows<{ id: string }>(
    server.container.database.db,
    sql`select id from messages where conversation_id = ${conversationId} order by created_at, id`,
  );
  expected = ordered.map((r) => r.id);
}, 60_000);
afterAll(async () => {
  await server.close();
});

async function page(query: string): Promise<Page> {
  const response = await server.api.get<Envelope<Page>>(
    `/api/chat/conversations/${conversationId}/messages?${query}`,
    { token: owner.accessToken },
  );
  expect(response.status, response.text).toBe(200);
  return response.body.data!;
}

describe('message pages over 1,000 messages', () => {
  it('has the timestamp ties the test is about', () => {
    expect(expected).toHaveLength(1000);
  });

  it('without a cursor returns the newest page, oldest first, with hasMore', async () => {
    const newest = await page('limit=50');
    expect(newest.messages.map((m) => m.id)).toEqual(expected.slice(-50));
    expect(newest.hasMore).toBe(true);
  });

  it('paging backwards from the newest visits every message once, in order', async () => {
    const seen: string[] = [];
    let current = await page('limit=37');
    seen.unshift(...current.messages.map((m) => m.id));
    while (current.hasMore) {
      current = await page(`limit=37&before=${seen[0]}`);
      seen.unshift(...current.messages.map((m) => m.id));
    }
    expect(seen).toEqual(expected);
  });

  it('paging forwards from the oldest visits every message once, in order', async () => {
    const seen: string[] = [expected[0]!];
    let hasMore = true;
    while (hasMore) {
      const current = await page(`limit=100&after=${seen.at(-1)}`);
      seen.push(...current.messages.map((m) => m.id));
      hasMore = current.hasMore;
    }
    expect(seen).toEqual(expected);
  });

  it('ends cleanly at both edges', async () => {
    const first = await page(`before=${expected[0]}`);
    expect(first).toEqual({ messages: [], hasMore: false });
    const last = await page(`after=${expected.at(-1)}`);
    expect(last).toEqual({ messages: [], hasMore: false });
  });

  it('rejects limits over 100, both cursors at once, and cursors from elsewhere', async () => {
    const bad = async (query: string) =>
      (
        await server.api.get(`/api/chat/conversations/${conversationId}/messages?${query}`, {
          token: owner.accessToken,
        })
      ).status;
    expect(await bad('limit=101')).toBe(400);
    expect(await bad('limit=0')).toBe(400);
    expect(await bad('limit=abc')).toBe(400);
    expect(await bad(`before=${expected[5]}&after=${expected[1]}`)).toBe(400);
    expect(await bad('before=nosuchmessage00000000000')).toBe(400);
    const other = await createConversation(server.api, owner);
    const foreign = await server.api.post<Envelope<{ message: MessageData }>>(
      `/api/chat/conversations/${other.id}/messages`,
      { content: 'elsewhere' },
      { token: owner.accessToken },
    );
    expect(await bad(`after=${foreign.body.data!.message.id}`)).toBe(400);
  });

  it('answers forged or odd before/after values with 400 naming the field, on either branch', async () => {
    const odd = [
      ...FORGED_CURSORS,
      ['64 nines', '9'.repeat(64)],
      ['65 characters', 'a'.repeat(65)],
      ['an unknown id', 'zzzzzzzzzzzzzzzzzzzzzzzz'],
      ['an id and more', `${expected[1]}&x=1`],
    ] as const;
    for (const name of ['before', 'after'])
      for (const branch of ['all', 'active'])
        for (const [label, value] of odd) {
          const response = await server.api.get<Envelope>(
            `/api/chat/conversations/${conversationId}/messages?branch=${branch}&${name}=${encodeURIComponent(value)}`,
            { token: owner.accessToken },
          );
          const what = `${name} ${label} (${branch}): ${response.text.slice(0, 200)}`;
          expect(response.status, what).toBe(400);
          expect(response.body, what).toMatchObject({
            success: false,
            code: 'VALIDATION_ERROR',
            details: [expect.objectContaining({ path: name })],
          });
        }
    // The same parameter twice is an array to Express: refused, not half-used.
    const twice = await server.api.get(
      `/api/chat/conversations/${conversationId}/messages?before=${expected[1]}&before=${expected[2]}`,
      { token: owner.accessToken },
    );
    expect(twice.status).toBe(400);
  });

  it('answers out-of-range or non-integer limit and page with 400, in lists and search', async () => {
    const values = ['1e308', '9'.repeat(400), '-0', '1.5', 'Infinity', 'NaN', '', ' ', '0x', '[]'];
    const urls = [
      (v: string) => `/api/chat/conversations/${conversationId}/messages?limit=${v}`,
      (v: string) => `/api/conversations?limit=${v}`,
      (v: string) => `/api/chat/search?q=message&limit=${v}`,
      (v: string) => `/api/chat/search?q=message&page=${v}`,
      (v: string) => `/api/chat/conversations/${conversationId}/search?q=message&page=${v}`,
    ];
    for (const url of urls)
      for (const value of values) {
        const response = await server.api.get<Envelope>(url(encodeURIComponent(value)), {
          token: owner.accessToken,
        });
        expect(response.status, `${url(value)}: ${response.text.slice(0, 200)}`).toBe(400);
        expect(response.body).toMatchObject({ success: false, code: 'VALIDATION_ERROR' });
      }
  });

  it('uses the (conversation_id, created_at, id) index for a page deep in the history', async () => {
    const cursor = expected[500]!;
    const db = server.container.database.db;
    // Tiny tables tempt the planner into a sequential scan; forbid it to prove the index serves.
    const plan = await db.transaction(async (tx) => {
      await tx.execute(sql`set local enable_seqscan = off`);
      return selectRows<{ 'QUERY PLAN': string }>(
        tx,
        sql`explain select * from messages
            where conversation_id = ${conversationId}
              and (created_at, id) < ((select created_at from messages where id = ${cursor}), ${cursor})
            order by created_at desc, id desc limit 51`,
      );
    });
    const text = plan.map((row) => row['QUERY PLAN']).join('\n');
    expect(text).toContain('messages_conversation_id_created_at_idx');
    expect(text).not.toMatch(/Sort\b/);
  });
});
