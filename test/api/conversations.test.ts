import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCursor } from '../../src/utils/cursor.js';
import {
  buildRoom,
  createConversation,
  registerUser,
  sendMessage,
  type ConversationData,
} from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { FORGED_CURSORS } from '../support/forged-cursors.js';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ MESSAGE_RATE_LIMIT: '100000', AI_MODELS: 'gpt-x' });
});
afterAll(async () => {
  await server.close();
});
const api = () => server.api;

interface ListItem extends ConversationData {
  unreadCount: number;
  lastMessage: { id: string; content: string; userId: string } | null;
  isArchived: boolean;
}
interface ListPage {
  items: ListItem[];
  nextCursor: string | null;
}

describe('POST /api/conversations', () => {
  it('makes the caller OWNER, participantIds MEMBERs, and titles it 新对话 by default', async () => {
    const [owner, a, b] = await Promise.all([1, 2, 3].map(() => registerUser(api())));
    const response = await api().post<Envelope<ConversationData>>(
      '/api/conversations',
      { participantIds: [a!.user.id, b!.user.id, a!.user.id, owner!.user.id] },
      { token: owner!.accessToken },
    );
    expect(response.status).toBe(201);
    const conversation = response.body.data!;
    expect(conversation.title).toBe('新对话');
    expect(conversation.myRole).toBe('OWNER');
    expect(conversation.settings).toEqual({ aiEnabled: true });
    const roles = Object.fromEntries(conversation.participants.map((p) => [p.userId, p.role]));
    expect(roles).toEqual({
      [owner!.user.id]: 'OWNER',
      [a!.user.id]: 'MEMBER',
      [b!.user.id]: 'MEMBER',
    });
  });

  it('validates settings and refuses unknown users', async () => {
    const owner = await registerUser(api());
    const token = { token: owner.accessToken };
    const good = await api().post<Envelope<ConversationData>>(
      '/api/conversations',
      {
        title: 'Tuned',
        settings: { temperature: 0.2, systemPrompt: 'Be brief', aiEnabled: false },
      },
      token,
    );
    expect(good.status).toBe(201);
    expect(good.body.data!.settings).toEqual({
      aiEnabled: false,
      temperature: 0.2,
      systemPrompt: 'Be brief',
    });
    for (const settings of [
      { temperature: 3 },
      { maxOutputTokens: 0 },
      { model: '' },
      { colour: 'red' },
    ]) {
      const bad = await api().post('/api/conversations', { settings }, token);
      expect(bad.status, JSON.stringify(settings)).toBe(400);
    }
    const unknown = await api().post(
      '/api/conversations',
      { participantIds: ['nosuchuser0000000000000a'] },
      token,
    );
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({
      code: 'NOT_FOUND',
      details: { userIds: ['nosuchuser0000000000000a'] },
    });
  });
});

describe('GET /api/conversations', () => {
  it('lists newest activity first with unread counts and a last-message preview', async () => {
    const [me, friend] = await Promise.all([registerUser(api()), registerUser(api())]);
    const older = await createConversation(api(), me, {
      title: 'older',
      participantIds: [friend.user.id],
    });
    const newer = await createConversation(api(), me, {
      title: 'newer',
      participantIds: [friend.user.id],
    });
    await sendMessage(api(), friend, older.id, 'one');
    await sendMessage(api(), friend, older.id, 'x'.repeat(500));
    await sendMessage(api(), me, older.id, 'my own message does not count as unread');

    const list = await api().get<Envelope<ListPage>>('/api/conversations', {
      token: me.accessToken,
    });
    expect(list.status).toBe(200);
    const [first, second] = list.body.data!.items;
    // The older conversation has the newest message now.
    expect(first!.id).toBe(older.id);
    expect(second!.id).toBe(newer.id);
    expect(first!.unreadCount).toBe(2);
    expect(first!.lastMessage!.content).toBe('my own message does not count as unread');
    expect(second!.unreadCount).toBe(0);
    expect(second!.lastMessage).toBeNull();

    const friendView = await api().get<Envelope<ListPage>>('/api/conversations', {
      token: friend.accessToken,
    });
    expect(friendView.body.data!.items.find((c) => c.id === older.id)!.unreadCount).toBe(1);

    await api().post(`/api/chat/conversations/${older.id}/read`, {}, { token: me.accessToken });
    const afterRead = await api().get<Envelope<ListPage>>('/api/conversations', {
      token: me.accessToken,
    });
    expect(afterRead.body.data!.items.find((c) => c.id === older.id)!.unreadCount).toBe(0);
  });

  it('truncates the preview to 200 characters', async () => {
    const me = await registerUser(api());
    const c = await createConversation(api(), me);
    await sendMessage(api(), me, c.id, 'y'.repeat(500));
    const list = await api().get<Envelope<ListPage>>('/api/conversations', {
      token: me.accessToken,
    });
    expect(list.body.data!.items[0]!.lastMessage!.content).toBe('y'.repeat(200));
  });

  it('pages with a cursor, visiting each conversation once', async () => {
    const me = await registerUser(api());
    const ids: string[] = [];
    for (let i = 0; i < 7; i++)
      ids.push((await createConversation(api(), me, { title: `c${i}` })).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?limit=3&cursor=${cursor}` : '?limit=3';
      const page: { body: Envelope<ListPage> } = await api().get<Envelope<ListPage>>(
        `/api/conversations${query}`,
        { token: me.accessToken },
      );
      seen.push(...page.body.data!.items.map((c) => c.id));
      cursor = page.body.data!.nextCursor;
    } while (cursor);
    // Same order as one unpaged list (ties in activity time are broken by id), each exactly once.
    const whole = await api().get<Envelope<ListPage>>('/api/conversations?limit=100', {
      token: me.accessToken,
    });
    expect(seen).toEqual(whole.body.data!.items.map((c) => c.id));
    expect([...seen].sort()).toEqual([...ids].sort());
  });

  it('answers every forged cursor with 400 VALIDATION_ERROR naming the field', async () => {
    const me = await registerUser(api());
    // Two pages exist, so a cursor that got through would be used.
    for (let i = 0; i < 3; i++) await createConversation(api(), me);
    for (const [label, cursor] of [
      ...FORGED_CURSORS,
      ['garbage', 'garbage'],
      ['[1,2]', Buffer.from('[1,2]').toString('base64url')],
    ] as const) {
      const response = await api().get<Envelope>(
        `/api/conversations?limit=1&cursor=${encodeURIComponent(cursor)}`,
        { token: me.accessToken },
      );
      expect(response.status, `${label}: ${response.text}`).toBe(400);
      expect(response.body, label).toMatchObject({
        success: false,
        code: 'VALIDATION_ERROR',
        details: [expect.objectContaining({ path: 'cursor' })],
      });
    }
  });

  it('takes a cursor of the first or last day PostgreSQL and the server both spell', async () => {
    const me = await registerUser(api());
    const c = await createConversation(api(), me);
    const page = async (at: string) =>
      api().get<Envelope<ListPage>>(
        `/api/conversations?cursor=${encodeCursor({ at: new Date(at), id: 'zzzz' })}`,
        { token: me.accessToken },
      );
    // Everything is older than year 9999 and newer than year 1.
    const late = await page('9999-12-31T23:59:59.999Z');
    expect(late.status, late.text).toBe(200);
    expect(late.body.data!.items.map((item) => item.id)).toEqual([c.id]);
    const early = await page('0001-01-01T00:00:00.000Z');
    expect(early.status, early.text).toBe(200);
    expect(early.body.data!.items).toEqual([]);
  });

  it('shows archived conversations only with ?archived=true', async () => {
    const me = await registerUser(api());
    const kept = await createConversation(api(), me, { title: 'kept' });
    const archived = await createConversation(api(), me, { title: 'archived' });
    const archive = await api().post(`/api/conversations/${archived.id}/archive`, undefined, {
      token: me.accessToken,
    });
    expect(archive.status).toBe(200);
    expect(archive.body).toMatchObject({ data: { isArchived: true } });
    const active = await api().get<Envelope<ListPage>>('/api/conversations', {
      token: me.accessToken,
    });
    expect(active.body.data!.items.map((c) => c.id)).toEqual([kept.id]);
    const onlyArchived = await api().get<Envelope<ListPage>>('/api/conversations?archived=true', {
      token: me.accessToken,
    });
    expect(onlyArchived.body.data!.items.map((c) => c.id)).toEqual([archived.id]);
    await api().post(
      `/api/conversations/${archived.id}/archive`,
      { archived: false },
      { token: me.accessToken },
    );
    const back = await api().get<Envelope<ListPage>>('/api/conversations', {
      token: me.accessToken,
    });
    expect(back.body.data!.items).toHaveLength(2);
  });
});

describe('PATCH /api/conversations/:id', () => {
  it('changes title and description and merges settings (null removes a key)', async () => {
    const { owner, admin, conversation } = await buildRoom(api());
    await api().patch(
      `/api/conversations/${conversation.id}`,
      { settings: { systemPrompt: 'Be kind', temperature: 0.5 } },
      { token: owner.accessToken },
    );
    const patched = await api().patch<Envelope<ConversationData>>(
      `/api/conversations/${conversation.id}`,
      {
        title: 'Renamed',
        description: 'About things',
        settings: { temperature: null, model: 'gpt-x' },
      },
      { token: admin.accessToken },
    );
    expect(patched.status).toBe(200);
    expect(patched.body.data).toMatchObject({
      title: 'Renamed',
      description: 'About things',
      settings: { aiEnabled: true, systemPrompt: 'Be kind', model: 'gpt-x' },
    });
    expect(patched.body.data!.settings).not.toHaveProperty('temperature');
  });

  it('refuses an empty patch and a blank title', async () => {
    const { owner, conversation } = await buildRoom(api());
    const path = `/api/conversations/${conversation.id}`;
    expect((await api().patch(path, {}, { token: owner.accessToken })).status).toBe(400);
    expect((await api().patch(path, { title: '   ' }, { token: owner.accessToken })).status).toBe(
      400,
    );
  });
});

describe('DELETE /api/conversations/:id', () => {
  it('soft-deletes: the conversation vanishes from every route for everyone', async () => {
    const { owner, member, conversation } = await buildRoom(api());
    const message = await sendMessage(api(), member, conversation.id, 'still here?');
    const deleted = await api().delete(`/api/conversations/${conversation.id}`, {
      token: owner.accessToken,
    });
    expect(deleted.status).toBe(200);

    const id = conversation.id;
    const m = message.id;
    const calls: Array<[string, string, unknown?]> = [
      ['GET', `/api/conversations/${id}`],
      ['PATCH', `/api/conversations/${id}`, { title: 'x' }],
      ['DELETE', `/api/conversations/${id}`],
      ['POST', `/api/conversations/${id}/archive`, {}],
      ['POST', `/api/conversations/${id}/participants`, { userId: owner.user.id }],
      ['DELETE', `/api/conversations/${id}/participants/${member.user.id}`],
      ['POST', `/api/chat/conversations/${id}/messages`, { content: 'hi' }],
      ['GET', `/api/chat/conversations/${id}/messages`],
      ['POST', `/api/chat/conversations/${id}/read`, {}],
      ['GET', `/api/chat/conversations/${id}/search?q=still`],
      ['PATCH', `/api/chat/messages/${m}`, { content: 'x' }],
      ['DELETE', `/api/chat/messages/${m}`],
      ['POST', `/api/chat/messages/${m}/reactions`, { emoji: '👍' }],
      ['DELETE', `/api/chat/messages/${m}/reactions/${encodeURIComponent('👍')}`],
    ];
    for (const user of [owner, member]) {
      for (const [method, path, body] of calls) {
        const response = await api().request(method, path, body, { token: user.accessToken });
        expect(response.status, `${method} ${path}`).toBe(404);
      }
      const list = await api().get<Envelope<ListPage>>('/api/conversations', {
        token: user.accessToken,
      });
      expect(list.body.data!.items.map((c) => c.id)).not.toContain(id);
      const search = await api().get<Envelope<{ items: unknown[] }>>('/api/chat/search?q=still', {
        token: user.accessToken,
      });
      expect(search.body.data!.items).toHaveLength(0);
    }
  });
});

describe('participants', () => {
  it('lets OWNER and ADMIN add members; only the OWNER adds admins; duplicates are 409', async () => {
    const { owner, admin, member, conversation } = await buildRoom(api());
    const [x, y] = await Promise.all([registerUser(api()), registerUser(api())]);
    const path = `/api/conversations/${conversation.id}/participants`;
    expect(
      (await api().post(path, { userId: x.user.id }, { token: admin.accessToken })).status,
    ).toBe(201);
    expect(
      (await api().post(path, { userId: y.user.id, role: 'ADMIN' }, { token: admin.accessToken }))
        .status,
    ).toBe(403);
    expect(
      (await api().post(path, { userId: y.user.id }, { token: member.accessToken })).status,
    ).toBe(403);
    expect(
      (await api().post(path, { userId: y.user.id, role: 'ADMIN' }, { token: owner.accessToken }))
        .status,
    ).toBe(201);
    expect(
      (await api().post(path, { userId: x.user.id }, { token: owner.accessToken })).status,
    ).toBe(409);
    expect(
      (await api().post(path, { userId: 'nosuchuser0000000000000a' }, { token: owner.accessToken }))
        .status,
    ).toBe(404);
    expect(
      (await api().post(path, { userId: x.user.id, role: 'OWNER' }, { token: owner.accessToken }))
        .status,
    ).toBe(400);
  });

  it('lets ADMINs remove members but not admins or the owner; the OWNER removes anyone', async () => {
    const { owner, admin, member, conversation } = await buildRoom(api());
    const other = await registerUser(api());
    const base = `/api/conversations/${conversation.id}/participants`;
    await api().post(base, { userId: other.user.id, role: 'ADMIN' }, { token: owner.accessToken });
    expect(
      (await api().delete(`${base}/${other.user.id}`, { token: admin.accessToken })).status,
    ).toBe(403);
    expect(
      (await api().delete(`${base}/${owner.user.id}`, { token: admin.accessToken })).status,
    ).toBe(403);
    expect(
      (await api().delete(`${base}/${member.user.id}`, { token: admin.accessToken })).status,
    ).toBe(200);
    expect(
      (await api().delete(`${base}/${other.user.id}`, { token: owner.accessToken })).status,
    ).toBe(200);
    expect(
      (await api().delete(`${base}/${member.user.id}`, { token: owner.accessToken })).status,
    ).toBe(404);
    // A removed member is an outsider now.
    expect(
      (await api().get(`/api/conversations/${conversation.id}`, { token: member.accessToken }))
        .status,
    ).toBe(403);
  });

  it('lets anyone leave; an owner who leaves hands ownership on; the last one out deletes it', async () => {
    const { owner, admin, member, conversation } = await buildRoom(api());
    const base = `/api/conversations/${conversation.id}/participants`;
    expect(
      (await api().delete(`${base}/${member.user.id}`, { token: member.accessToken })).status,
    ).toBe(200);
    expect(
      (await api().delete(`${base}/${owner.user.id}`, { token: owner.accessToken })).status,
    ).toBe(200);
    const view = await api().get<Envelope<ConversationData>>(
      `/api/conversations/${conversation.id}`,
      {
        token: admin.accessToken,
      },
    );
    expect(view.body.data!.myRole).toBe('OWNER');
    expect(view.body.data!.participants.map((p) => p.userId)).toEqual([admin.user.id]);
    expect(
      (await api().delete(`${base}/${admin.user.id}`, { token: admin.accessToken })).status,
    ).toBe(200);
    expect(
      (await api().get(`/api/conversations/${conversation.id}`, { token: admin.accessToken }))
        .status,
    ).toBe(404);
  });
});
