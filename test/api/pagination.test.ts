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
