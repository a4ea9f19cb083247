// Issue 8, acceptance 3: no acknowledged message is ever hidden. Concurrent sends (REST and
// sockets mixed) and AI answers interleaved with other people's messages are not forks; only
// regenerate and edit-and-resend make alternatives, and the migration of rows written under the
// old tree model keeps what people saw without the accidental forks.
import { readFile } from 'node:fs/promises';
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createConversation,
  registerUser,
  type MessageData,
  type StoredMessage,
  type RegisteredUser,
} from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { startFakeAiServer, type FakeAiServer } from '../support/ai.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { selectRows } from '../support/sql.js';
import { connectAs, request, settle, type RecordingSocket } from '../support/sockets.js';

type Stored = StoredMessage;

const open: RecordingSocket[] = [];
afterEach(() => {
  for (const socket of open.splice(0)) socket.close();
});

async function listAll(
  server: TestServer,
  user: RegisteredUser,
  conversationId: string,
  branch: 'all' | 'active',
): Promise<Stored[]> {
  const page = await server.api.get<Envelope<{ messages: Stored[]; hasMore: boolean }>>(
    `/api/chat/conversations/${conversationId}/messages?branch=${branch}&limit=100`,
    { token: user.accessToken },
  );
  if (page.body.data!.hasMore) throw new Error('more than one page of messages');
  return page.body.data!.messages;
}

async function room(server: TestServer, people: number) {
  const users = await Promise.all(Array.from({ length: people }, () => registerUser(server.api)));
  const conversation = await createConversation(server.api, users[0]!, {
    participantIds: users.slice(1).map((u) => u.user.id),
  });
  return { users, conversation };
}

/** Sends over REST or over the user's socket (every other message), all at once. */
function sendMixed(
  server: TestServer,
  sockets: RecordingSocket[],
  users: RegisteredUser[],
  conversationId: string,
  perUser: number,
  body: Record<string, unknown> = {},
): Promise<Array<{ message: MessageData; generation?: { id: string; messageId: string } }>> {
  return Promise.all(
    users.flatMap((user, u) =>
      Array.from({ length: perUser }, async (_, i) => {
        const content = `user ${u} message ${i}`;
        if (i % 2 === 0) {
          const sent = await server.api.post<
            Envelope<{ message: MessageData; generation?: { id: string; messageId: string } }>
          >(
            `/api/chat/conversations/${conversationId}/messages`,
            { content, ...body },
            { token: user.accessToken },
          );
          if (sent.status !== 201) throw new Error(`REST send failed: ${sent.text}`);
          return sent.body.data!;
        }
        const ack = await request(
          sockets[u]!.socket,
          'message:send',
          { conversationId, content, ...body },
          10_000,
        );
        if (!ack.ok) throw new Error(`socket send failed: ${ack.error.message}`);
        return ack.data as { message: MessageData; generation?: { id: string; messageId: string } };
      }),
    ),
  );
}

describe('without AI', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ AI_PROVIDER: 'none' });
  });
  afterAll(async () => {
    await server.close();
  });

  it('40 messages sent at once by 4 participants (REST and sockets) all appear once on the active branch', async () => {
    const { users, conversation } = await room(server, 4);
    const sockets = await Promise.all(users.map((u) => connectAs(server.url, u.accessToken)));
    open.push(...sockets);
    const sent = await sendMixed(server, sockets, users, conversation.id, 10);
    expect(sent).toHaveLength(40);
    const active = await listAll(server, users[0]!, conversation.id, 'active');
    const ids = active.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual(sent.map((s) => s.message.id).sort());
    expect(active.every((m) => !m.superseded && m.parentId === null)).toBe(true);
  });

  it('a reply a client chooses hides nothing', async () => {
    const { users, conversation } = await room(server, 2);
    const [a, b] = users as [RegisteredUser, RegisteredUser];
    const first = (
      await server.api.post<Envelope<{ message: Stored }>>(
        `/api/chat/conversations/${conversation.id}/messages`,
        { content: 'first' },
        { token: a.accessToken },
      )
    ).body.data!.message;
    await server.api.post(
      `/api/chat/conversations/${conversation.id}/messages`,
      { content: 'second' },
      { token: b.accessToken },
    );
    const reply = await server.api.post<Envelope<{ message: Stored }>>(
      `/api/chat/conversations/${conversation.id}/messages`,
      { content: 'a reply to the first', parentId: first.id },
      { token: b.accessToken },
    );
    expect(reply.body.data!.message).toMatchObject({ parentId: first.id, superseded: false });
    const active = await listAll(server, a, conversation.id, 'active');
    expect(active.map((m) => m.content)).toEqual(['first', 'second', 'a reply to the first']);
  });
});

describe('with AI answers', () => {
  let ai: FakeAiServer;
  beforeAll(async () => {
    ai = await startFakeAiServer({ AI_MAX_PENDING_PER_USER: '3' });
    ai.fake.fallback = { kind: 'stream', tokens: ['an', ' answer'], delayMs: 20 };
  });
  afterAll(async () => {
    await ai.close();
  });

  async function waitDone(user: RegisteredUser, conversationId: string) {
    for (let i = 0; i < 200; i++) {
      const all = await listAll(ai.server, user, conversationId, 'all');
      if (all.every((m) => m.status !== 'SENDING')) return all;
      await settle(50);
    }
    throw new Error('answers did not finish');
  }

  it('12 questions sent at once (3 per participant): 12 answers, each after its question, each seeing it', async () => {
    const { server, fake } = ai;
    const { users, conversation } = await room(server, 4);
    const sockets = await Promise.all(users.map((u) => connectAs(server.url, u.accessToken)));
    open.push(...sockets);
    const before = fake.requests.length;
    const sent = await sendMixed(server, sockets, users, conversation.id, 3);
    expect(sent.every((s) => s.generation)).toBe(true);
    await waitDone(users[0]!, conversation.id);

    const active = await listAll(server, users[0]!, conversation.id, 'active');
    expect(active).toHaveLength(24);
    const position = new Map(active.map((m, i) => [m.id, i]));
    for (const { message, generation } of sent) {
      const answer = active.find((m) => m.id === generation!.messageId)!;
      expect(answer).toMatchObject({ role: 'ASSISTANT', status: 'SENT', parentId: message.id });
      expect(position.get(answer.id)!).toBeGreaterThan(position.get(message.id)!);
    }
    // Each answer was asked with its question as the newest user message, and with every
    // question that came before it.
    const requests = fake.requests.slice(before);
    expect(requests).toHaveLength(12);
    for (const { message } of sent) {
      const asked = requests.filter((r) => r.body.messages.at(-1)?.content === message.content);
      expect(asked).toHaveLength(1);
      const earlierQuestions = active
        .slice(0, position.get(message.id))
        .filter((m) => m.role === 'USER')
        .map((m) => m.content);
      const context = asked[0]!.body.messages.map((m) => m.content);
      expect(context).toEqual(expect.arrayContaining(earlierQuestions));
    }
    // A question after all that sees all 24.
    const last = await server.api.post<Envelope<{ generation: { id: string } }>>(
      `/api/chat/conversations/${conversation.id}/messages`,
      { content: 'and now?' },
      { token: users[1]!.accessToken },
    );
    expect(last.status).toBe(201);
    await waitDone(users[0]!, conversation.id);
    const context = fake.requests.at(-1)!.body.messages.map((m) => m.content);
    for (const m of active) expect(context).toContain(m.content);
    expect(context.at(-1)).toBe('and now?');
  });

  it('regenerating one answer three times at once leaves exactly one version on the branch', async () => {
    const { server } = ai;
    const { users, conversation } = await room(server, 3);
    const asked = await server.api.post<Envelope<{ generation: { messageId: string } }>>(
      `/api/chat/conversations/${conversation.id}/messages`,
      { content: 'question' },
      { token: users[0]!.accessToken },
    );
    await waitDone(users[0]!, conversation.id);
    const original = asked.body.data!.generation.messageId;
    const results = await Promise.all(
      users.map((u) =>
        server.api.post(`/api/chat/messages/${original}/regenerate`, undefined, {
          token: u.accessToken,
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual([201, 201, 201]);
    const all = await waitDone(users[0]!, conversation.id);
    const versions = all.filter((m) => m.id === original || m.alternativeOf === original);
    expect(versions).toHaveLength(4);
    expect(versions.filter((m) => !m.superseded)).toHaveLength(1);
    const active = await listAll(server, users[0]!, conversation.id, 'active');
    expect(active.map((m) => m.content)).toEqual(['question', 'an answer']);
  });
});

describe('migration 0003 of rows written under the tree model', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it('hides no acknowledged message: only regenerated answers become versions', async () => {
    const { db } = server.container.database;
    const owner = await registerUser(server.api);
    const other = await registerUser(server.api);
    const conversation = await createConversation(server.api, owner, {
      participantIds: [other.user.id],
    });
    const c = conversation.id;
    const o = owner.user.id;
    const b = other.user.id;
    // As the old code wrote them: each message's parent is the newest message before it, an
    // answer's is its question; two concurrent sends share a parent (a fork that hid one);
    // regenerate made an answer beside the first; edit-and-resend a question beside the first.
    await db.execute(sql`
      insert into messages (id, conversation_id, user_id, content, role, status, parent_id, created_at) values
        ('m01', ${c}, ${o}, 'q1', 'USER', 'SENT', null, '2026-01-01T00:00:01Z'),
        ('m02', ${c}, null, 'a1', 'ASSISTANT', 'SENT', 'm01', '2026-01-01T00:00:02Z'),
        ('m03', ${c}, ${o}, 'q2 by owner', 'USER', 'SENT', 'm02', '2026-01-01T00:00:03Z'),
        ('m04', ${c}, ${b}, 'q2 by other, same instant', 'USER', 'SENT', 'm02', '2026-01-01T00:00:03Z'),
        ('m05', ${c}, null, 'a2', 'ASSISTANT', 'SENT', 'm03', '2026-01-01T00:00:04Z'),
        ('m06', ${c}, null, 'a2, regenerated', 'ASSISTANT', 'SENT', 'm03', '2026-01-01T00:00:05Z'),
        ('m07', ${c}, ${o}, 'q1, edited', 'USER', 'SENT', null, '2026-01-01T00:00:06Z'),
        ('m08', ${c}, null, 'a1 to the edit', 'ASSISTANT', 'SENT', 'm07', '2026-01-01T00:00:07Z')`);
    const file = new URL(
      '../../src/db/migrations/0003_branches_as_alternatives.sql',
      import.meta.url,
    );
    const statements = (await readFile(file, 'utf8')).split('--> statement-breakpoint');
    // The schema changes ran when the database was made; run the data steps on these rows.
    for (const statement of statements.filter((s) => /^\s*(--.*\n\s*)*(WITH|UPDATE)/i.test(s)))
      await db.execute(sql.raw(statement));

    const rows = await selectRows<{
      id: string;
      parent_id: string | null;
      alternative_of: string | null;
      superseded: boolean;
    }>(
      db,
      sql`select id, parent_id, alternative_of, superseded from messages where conversation_id = ${c} order by id`,
    );
    const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
    // Answers under one question are versions: m06 replaced m05. User messages under one parent
    // (m03 and m04 raced; m07 was an edit of m01) all stay: no acknowledged message is hidden.
    expect(byId.m06).toMatchObject({ alternative_of: 'm05', superseded: false });
    expect(byId.m05).toMatchObject({ alternative_of: null, superseded: true });
    for (const id of ['m01', 'm02', 'm03', 'm04', 'm07', 'm08'])
      expect(byId[id], id).toMatchObject({ alternative_of: null, superseded: false });
    // No user message keeps the default link; answers keep their question.
    expect(byId.m03).toMatchObject({ parent_id: null });
    expect(byId.m04).toMatchObject({ parent_id: null });
    expect(byId.m02).toMatchObject({ parent_id: 'm01' });
    const active = await listAll(server, owner, c, 'active');
    expect(active.map((m) => m.content)).toEqual([
      'q1',
      'a1',
      'q2 by owner',
      'q2 by other, same instant',
      'a2, regenerated',
      'q1, edited',
      'a1 to the edit',
    ]);
  });
});
