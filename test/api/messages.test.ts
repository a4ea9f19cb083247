import { createId } from '../../src/utils/ids.js';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildRoom,
  createConversation,
  registerUser,
  sendMessage,
  type ConversationData,
  type MessageData,
} from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { withGlobalRole } from '../support/roles.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { selectRows } from '../support/sql.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ MESSAGE_RATE_LIMIT: '100000' });
});
afterAll(async () => {
  await server.close();
});
const api = () => server.api;
const messagesPath = (id: string) => `/api/chat/conversations/${id}/messages`;

interface FullMessage extends MessageData {
  type: string;
  parentId: string | null;
  metadata: Record<string, unknown> | null;
  isEdited: boolean;
  editedAt: string | null;
  author: { id: string; username: string | null } | null;
  reactions: Array<{ emoji: string; count: number; userIds: string[] }>;
  attachments: Array<{ id: string; mimeType: string }>;
}

describe('POST /api/chat/conversations/:id/messages', () => {
  it('stores the message, answers 201 {message}, and moves lastMessageAt in the same write', async () => {
    const { owner, member, conversation } = await buildRoom(api());
    const response = await api().post<Envelope<{ message: FullMessage }>>(
      messagesPath(conversation.id),
      { content: 'Hello **world**', type: 'MARKDOWN', metadata: { client: 'web' } },
      { token: member.accessToken },
    );
    expect(response.status).toBe(201);
    const message = response.body.data!.message;
    expect(message).toMatchObject({
      conversationId: conversation.id,
      userId: member.user.id,
      author: { id: member.user.id, username: member.user.username },
      content: 'Hello **world**',
      role: 'USER',
      type: 'MARKDOWN',
      status: 'SENT',
      metadata: { client: 'web' },
      isEdited: false,
      isDeleted: false,
      reactions: [],
      attachments: [],
    });
    const view = await api().get<Envelope<ConversationData>>(
      `/api/conversations/${conversation.id}`,
      {
        token: owner.accessToken,
      },
    );
    expect(view.body.data!.lastMessageAt).toBe(message.createdAt);
  });

  it('checks content: 1–32,000 characters (an emoji counts once), not blank', async () => {
    const { member, conversation } = await buildRoom(api());
    const send = (content: unknown) =>
      api().post(messagesPath(conversation.id), { content }, { token: member.accessToken });
    expect((await send('')).status).toBe(400);
    expect((await send('   \n\t')).status).toBe(400);
    expect((await send('x'.repeat(32_001))).status).toBe(400);
    expect((await send(42)).status).toBe(400);
    expect((await send('x'.repeat(32_000))).status).toBe(201);
    // 20,000 emoji are 40,000 UTF-16 units but 20,000 characters.
    expect((await send('😀'.repeat(20_000))).status).toBe(201);
  });

  it('checks type, parentId (same conversation), metadata size and unknown fields', async () => {
    const { member, conversation } = await buildRoom(api());
    const elsewhere = await createConversation(api(), member);
    const foreign = await sendMessage(api(), member, elsewhere.id, 'elsewhere');
    const parent = await sendMessage(api(), member, conversation.id, 'parent');
    const send = (body: Record<string, unknown>) =>
      api().post<Envelope<{ message: FullMessage }>>(
        messagesPath(conversation.id),
        { content: 'hi', ...body },
        {
          token: member.accessToken,
        },
      );
    expect((await send({ type: 'IMAGE' })).status).toBe(400);
    expect((await send({ role: 'ASSISTANT' })).status).toBe(400);
    expect((await send({ parentId: foreign.id })).status).toBe(400);
    expect((await send({ parentId: 'nosuchmessage00000000000' })).status).toBe(400);
    expect((await send({ metadata: { blob: 'x'.repeat(9000) } })).status).toBe(400);
    expect((await send({ metadata: ['not', 'an', 'object'] })).status).toBe(400);
    const reply = await send({ parentId: parent.id });
    expect(reply.status).toBe(201);
    expect(reply.body.data!.message.parentId).toBe(parent.id);
  });

  it('creates one message for a repeated clientMessageId and replays it', async () => {
    const { member, owner, conversation } = await buildRoom(api());
    const body = { content: 'only once', clientMessageId: 'web-1:abc' };
    const first = await api().post<Envelope<{ message: FullMessage }>>(
      messagesPath(conversation.id),
      body,
      {
        token: member.accessToken,
      },
    );
    const again = await api().post<Envelope<{ message: FullMessage }>>(
      messagesPath(conversation.id),
      body,
      {
        token: member.accessToken,
      },
    );
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.data!.message.id).toBe(first.body.data!.message.id);
    // Another user may use the same client id for their own message.
    const other = await api().post<Envelope<{ message: FullMessage }>>(
      messagesPath(conversation.id),
      body,
      {
        token: owner.accessToken,
      },
    );
    expect(other.body.data!.message.id).not.toBe(first.body.data!.message.id);
    const page = await api().get<Envelope<{ messages: FullMessage[] }>>(
      messagesPath(conversation.id),
      {
        token: member.accessToken,
      },
    );
    expect(page.body.data!.messages.filter((m) => m.content === 'only once')).toHaveLength(2);
  });

  it('creates one message when the same clientMessageId races in concurrently', async () => {
    const { member, conversation } = await buildRoom(api());
    const body = { content: 'racing', clientMessageId: `race-${createId()}` };
    const results = await Promise.all(
      Array.from({ length: 5 }, () =>
        api().post<Envelope<{ message: FullMessage }>>(messagesPath(conversation.id), body, {
          token: member.accessToken,
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual([201, 201, 201, 201, 201]);
    expect(new Set(results.map((r) => r.body.data!.message.id)).size).toBe(1);
  });

  it('refuses a clientMessageId already used in another conversation with 409', async () => {
    const { member, conversation } = await buildRoom(api());
    const other = await createConversation(api(), member);
    await sendMessage(api(), member, conversation.id, { content: 'a', clientMessageId: 'reused' });
    const clash = await api().post(
      messagesPath(other.id),
      { content: 'b', clientMessageId: 'reused' },
      {
        token: member.accessToken,
      },
    );
    expect(clash.status).toBe(409);
  });

  it('attaches the sender’s own unsent uploads and takes the type from them', async () => {
    const { member, owner, conversation } = await buildRoom(api());
    const insert = async (uploader: string, mime: string) => {
      const id = createId();
      await server.container.database.db.execute(
        sql`insert into attachments (id, uploader_id, filename, original_name, mime_type, size, url)
            values (${id}, ${uploader}, ${id}, 'f', ${mime}, 10, ${`/api/attachments/${id}/content`})`,
      );
      return id;
    };
    const [png, jpg, pdf, others] = await Promise.all([
      insert(member.user.id, 'image/png'),
      insert(member.user.id, 'image/jpeg'),
      insert(member.user.id, 'application/pdf'),
      insert(owner.user.id, 'image/png'),
    ]);
    const images = await sendMessage(api(), member, conversation.id, {
      content: 'pics',
      attachments: [png, jpg],
    });
    expect(images).toMatchObject({ type: 'IMAGE' });
    expect((images as FullMessage).attachments.map((a) => a.id).sort()).toEqual([png, jpg].sort());
    // Used already; someone else's; unknown: all refused, and nothing is half-sent.
    for (const attachments of [[png], [others], ['nosuchattachment00000000'], [pdf, others]]) {
      const refused = await api().post(
        messagesPath(conversation.id),
        { content: 'x', attachments },
        {
          token: member.accessToken,
        },
      );
      expect(refused.status, JSON.stringify(attachments)).toBe(400);
    }
    const doc = await sendMessage(api(), member, conversation.id, {
      content: 'doc',
      attachments: [pdf],
    });
    expect(doc).toMatchObject({ type: 'FILE' });
  });
});

describe('editing and deleting', () => {
  it('lets only the author edit, marking it edited', async () => {
    const { owner, member, conversation } = await buildRoom(api());
    const message = await sendMessage(api(), member, conversation.id, 'first draft');
    expect(
      (
        await api().patch(
          `/api/chat/messages/${message.id}`,
          { content: 'hijack' },
          { token: owner.accessToken },
        )
      ).status,
    ).toBe(403);
    const edited = await api().patch<Envelope<FullMessage>>(
      `/api/chat/messages/${message.id}`,
      { content: 'final' },
      {
        token: member.accessToken,
      },
    );
    expect(edited.status).toBe(200);
    expect(edited.body.data).toMatchObject({ content: 'final', isEdited: true });
    expect(Date.parse(edited.body.data!.editedAt!)).toBeGreaterThanOrEqual(
      Date.parse(message.createdAt),
    );
    expect(
      (
        await api().patch(
          `/api/chat/messages/${message.id}`,
          { content: '' },
          { token: member.accessToken },
        )
      ).status,
    ).toBe(400);
  });

  it('soft-deletes: the message keeps its place, its content is no longer served', async () => {
    const { owner, member, conversation } = await buildRoom(api());
    const before = await sendMessage(api(), member, conversation.id, 'before');
    const secret = await sendMessage(api(), member, conversation.id, 'secret words');
    await api().post(
      `/api/chat/messages/${secret.id}/reactions`,
      { emoji: '🔥' },
      { token: owner.accessToken },
    );
    const after = await sendMessage(api(), member, conversation.id, 'after');
    const deleted = await api().delete(`/api/chat/messages/${secret.id}`, {
      token: member.accessToken,
    });
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({ data: { id: secret.id, deleted: true } });

    const page = await api().get<Envelope<{ messages: FullMessage[] }>>(
      messagesPath(conversation.id),
      {
        token: owner.accessToken,
      },
    );
    expect(page.body.data!.messages.map((m) => m.id)).toEqual([before.id, secret.id, after.id]);
    const gone = page.body.data!.messages[1]!;
    expect(gone).toMatchObject({ isDeleted: true, content: null, metadata: null, reactions: [] });
    expect(JSON.stringify(page.body)).not.toContain('secret words');
    const search = await api().get<Envelope<{ items: unknown[] }>>(
      `/api/chat/conversations/${conversation.id}/search?q=secret`,
      { token: owner.accessToken },
    );
    expect(search.body.data!.items).toHaveLength(0);
    // Deleted twice, edited or reacted to after deletion: not found.
    expect(
      (await api().delete(`/api/chat/messages/${secret.id}`, { token: member.accessToken })).status,
    ).toBe(404);
    expect(
      (
        await api().patch(
          `/api/chat/messages/${secret.id}`,
          { content: 'x' },
          { token: member.accessToken },
        )
      ).status,
    ).toBe(404);
    expect(
      (
        await api().post(
          `/api/chat/messages/${secret.id}/reactions`,
          { emoji: '👍' },
          { token: owner.accessToken },
        )
      ).status,
    ).toBe(404);
  });

  it('lets the author, conversation OWNER/ADMIN and global ADMIN/MODERATOR delete; not members or outsiders', async () => {
    const { owner, admin, member, conversation } = await buildRoom(api());
    const outsider = await registerUser(api());
    const globalAdmin = await withGlobalRole(server, await registerUser(api()), 'ADMIN');
    const moderator = await withGlobalRole(server, await registerUser(api()), 'MODERATOR');
    const byOwner = await sendMessage(api(), owner, conversation.id, 'owner says');
    const remove = (id: string, token: string) =>
      api().delete(`/api/chat/messages/${id}`, { token });
    expect((await remove(byOwner.id, member.accessToken)).status).toBe(403);
    expect((await remove(byOwner.id, outsider.accessToken)).status).toBe(403);
    expect((await remove(byOwner.id, admin.accessToken)).status).toBe(200);
    for (const actor of [owner, globalAdmin, moderator]) {
      const m = await sendMessage(api(), member, conversation.id, 'member says');
      expect((await remove(m.id, actor.accessToken)).status).toBe(200);
    }
    expect((await remove('nosuchmessage00000000000', owner.accessToken)).status).toBe(404);
  });
});

describe('reactions', () => {
  it('adds idempotently, aggregates per emoji, removes by URL-encoded emoji', async () => {
    const { owner, member, conversation } = await buildRoom(api());
    const message = await sendMessage(api(), member, conversation.id, 'react to me');
    const path = `/api/chat/messages/${message.id}/reactions`;
    const family = '👨‍👩‍👧‍👦';
    for (const [user, emoji] of [
      [owner, '👍'],
      [owner, '👍'],
      [member, '👍'],
      [member, family],
      [owner, '🇫🇷'],
      [owner, '👋🏽'],
    ] as const) {
      const response = await api().post(path, { emoji }, { token: user.accessToken });
      expect(response.status, emoji).toBe(201);
    }
    const read = async () =>
      (
        await api().get<Envelope<{ messages: FullMessage[] }>>(messagesPath(conversation.id), {
          token: owner.accessToken,
        })
      ).body.data!.messages[0]!.reactions;
    expect(await read()).toEqual([
      { emoji: '👍', count: 2, userIds: [owner.user.id, member.user.id] },
      { emoji: family, count: 1, userIds: [member.user.id] },
      { emoji: '🇫🇷', count: 1, userIds: [owner.user.id] },
      { emoji: '👋🏽', count: 1, userIds: [owner.user.id] },
    ]);
    const removed = await api().delete(`${path}/${encodeURIComponent(family)}`, {
      token: member.accessToken,
    });
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ data: { removed: true } });
    const again = await api().delete(`${path}/${encodeURIComponent(family)}`, {
      token: member.accessToken,
    });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ data: { removed: false } });
    expect((await read()).map((r) => r.emoji)).toEqual(['👍', '🇫🇷', '👋🏽']);
  });

  it('refuses what is not a single emoji', async () => {
    const { member, conversation } = await buildRoom(api());
    const message = await sendMessage(api(), member, conversation.id, 'x');
    const path = `/api/chat/messages/${message.id}/reactions`;
    for (const emoji of ['', 'a', ':+1:', '👍👍', '<script>', '1', 'x'.repeat(100)]) {
      const response = await api().post(path, { emoji }, { token: member.accessToken });
      expect(response.status, emoji).toBe(400);
    }
    expect((await api().delete(`${path}/abc`, { token: member.accessToken })).status).toBe(400);
    expect((await api().delete(`${path}/%E0%A4%A`, { token: member.accessToken })).status).toBe(
      400,
    );
  });
});

describe('POST /api/chat/conversations/:id/read', () => {
  it('moves lastReadAt to now or to a message, never backwards', async () => {
    const { owner, member, conversation } = await buildRoom(api());
    const first = await sendMessage(api(), owner, conversation.id, 'one');
    await new Promise((resolve) => setTimeout(resolve, 5));
    const second = await sendMessage(api(), owner, conversation.id, 'two');
    const read = (body: object) =>
      api().post<Envelope<{ lastReadAt: string; messageId: string | null }>>(
        `/api/chat/conversations/${conversation.id}/read`,
        body,
        { token: member.accessToken },
      );
    const upToFirst = await read({ messageId: first.id });
    expect(upToFirst.status).toBe(200);
    expect(upToFirst.body.data).toMatchObject({ lastReadAt: first.createdAt, messageId: first.id });
    const upToSecond = await read({ messageId: second.id });
    expect(upToSecond.body.data!.lastReadAt).toBe(second.createdAt);
    const backwards = await read({ messageId: first.id });
    expect(backwards.body.data!.lastReadAt).toBe(second.createdAt);
    const now = await read({});
    expect(Date.parse(now.body.data!.lastReadAt)).toBeGreaterThanOrEqual(
      Date.parse(second.createdAt),
    );
    const elsewhere = await createConversation(api(), member);
    const foreign = await sendMessage(api(), member, elsewhere.id, 'x');
    expect((await read({ messageId: foreign.id })).status).toBe(400);
  });
});

describe('rate limit', () => {
  it('refuses the 31st message in a minute with 429 and Retry-After', async () => {
    const limited = await startTestServer();
    try {
      const user = await registerUser(limited.api);
      const conversation = await createConversation(limited.api, user);
      for (let i = 0; i < 30; i++) {
        const response = await limited.api.post(
          messagesPath(conversation.id),
          { content: `m${i}` },
          {
            token: user.accessToken,
          },
        );
        expect(response.status).toBe(201);
      }
      const refused = await limited.api.post(
        messagesPath(conversation.id),
        { content: 'one too many' },
        {
          token: user.accessToken,
        },
      );
      expect(refused.status).toBe(429);
      expect(refused.body).toMatchObject({ code: 'RATE_LIMITED' });
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
      // Another user's budget is their own.
      const other = await registerUser(limited.api);
      const theirs = await createConversation(limited.api, other);
      expect(
        (
          await limited.api.post(
            messagesPath(theirs.id),
            { content: 'hi' },
            { token: other.accessToken },
          )
        ).status,
      ).toBe(201);
      const rows = await selectRows<{ n: number }>(
        limited.container.database.db,
        sql`select count(*)::int as n from messages where conversation_id = ${conversation.id}`,
      );
      expect(rows[0]!.n).toBe(30);
    } finally {
      await limited.close();
    }
  });
});
