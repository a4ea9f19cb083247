// Issue 4, acceptance 1 and 2: every client event checks participation, and every REST
// mutation reaches the other participants' sockets (never an outsider's).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  buildRoom,
  createConversation,
  registerUser,
  sendMessage,
  type RegisteredUser,
} from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { fire, request, settle, socketSuite } from '../support/sockets.js';

let server: TestServer;
const sockets = socketSuite(
  { beforeAll, afterEach, afterAll },
  async () => (server = await startTestServer({ MESSAGE_RATE_LIMIT: '100000' })),
);

const socketFor = (user: RegisteredUser) => sockets.connect(user);

/** A room (owner, admin, member) and an outsider, each with a connected socket. */
async function scene() {
  const room = await buildRoom(server.api);
  const outsider = await registerUser(server.api);
  const [owner, admin, member, stranger] = await Promise.all(
    [room.owner, room.admin, room.member, outsider].map(socketFor),
  );
  await settle(100); // presence notices from connecting
  for (const s of [owner!, admin!, member!, stranger!]) s.clear();
  return {
    ...room,
    outsider,
    sockets: { owner: owner!, admin: admin!, member: member!, stranger: stranger! },
  };
}

describe('client events: participants succeed, outsiders are refused and heard by nobody', () => {
  const cases: Array<{
    event: string;
    payload: (c: string, m: string) => object;
    heard: string | null;
  }> = [
    { event: 'conversation:join', payload: (c) => ({ conversationId: c }), heard: 'user:joined' },
    { event: 'conversation:leave', payload: (c) => ({ conversationId: c }), heard: 'user:left' },
    {
      event: 'message:send',
      payload: (c) => ({ conversationId: c, content: 'over the socket' }),
      heard: 'message:new',
    },
    {
      event: 'message:read',
      payload: (c, m) => ({ conversationId: c, messageId: m }),
      heard: 'conversation:read',
    },
    { event: 'typing:start', payload: (c) => ({ conversationId: c }), heard: 'typing:start' },
    { event: 'typing:stop', payload: (c) => ({ conversationId: c }), heard: null },
  ];

  for (const { event, payload, heard } of cases) {
    it(`${event}`, async () => {
      const s = await scene();
      const message = await sendMessage(server.api, s.owner, s.conversation.id, 'hello');
      await settle(100);
      Object.values(s.sockets).forEach((x) => x.clear());

      // The outsider, with an ack and without one: refused, and nobody hears a thing.
      const refused = await request(
        s.sockets.stranger.socket,
        event,
        payload(s.conversation.id, message.id),
      );
      expect(refused).toMatchObject({ ok: false, error: { code: 'PERMISSION_DENIED' } });
      fire(s.sockets.stranger.socket, event, payload(s.conversation.id, message.id));
      const error = await s.sockets.stranger.next('error');
      expect(error).toMatchObject({ code: 'PERMISSION_DENIED', event });
      await settle();
      for (const who of ['owner', 'admin', 'member'] as const) {
        expect(s.sockets[who].received, `${who} heard the outsider`).toEqual([]);
      }

      // The member: acknowledged, and the others hear it.
      const accepted = await request(
        s.sockets.member.socket,
        event,
        payload(s.conversation.id, message.id),
      );
      expect(accepted).toMatchObject({ ok: true });
      if (heard) {
        const got = await s.sockets.owner.next(heard);
        expect(got).toMatchObject({ conversationId: s.conversation.id });
      }
      await settle();
      expect(s.sockets.stranger.received.filter((r) => r.event !== 'error')).toEqual([]);
    });
  }

  it('typing:stop after a start is heard as typing:stop by the others, not by the typist', async () => {
    const s = await scene();
    await request(s.sockets.member.socket, 'typing:start', { conversationId: s.conversation.id });
    await s.sockets.owner.next('typing:start');
    await request(s.sockets.member.socket, 'typing:stop', { conversationId: s.conversation.id });
    expect(await s.sockets.owner.next('typing:stop')).toMatchObject({ userId: s.member.user.id });
    expect(s.sockets.member.of('typing:start')).toEqual([]);
  });

  it('message:send answers the sender with the stored message', async () => {
    const s = await scene();
    const ack = await request(s.sockets.member.socket, 'message:send', {
      conversationId: s.conversation.id,
      content: 'ack me',
      clientMessageId: 'sock-1',
    });
    expect(ack).toMatchObject({
      ok: true,
      data: { replayed: false, message: { content: 'ack me', userId: s.member.user.id } },
    });
    const stored = await server.api.get<Envelope<{ messages: Array<{ content: string }> }>>(
      `/api/chat/conversations/${s.conversation.id}/messages`,
      { token: s.owner.accessToken },
    );
    expect(stored.body.data!.messages.map((m) => m.content)).toContain('ack me');
  });

  it('answers a missing conversation with NOT_FOUND and bad payloads with VALIDATION_ERROR', async () => {
    const s = await scene();
    expect(
      await request(s.sockets.member.socket, 'typing:start', {
        conversationId: 'nosuchconversation000000',
      }),
    ).toMatchObject({
      ok: false,
      error: { code: 'NOT_FOUND' },
    });
    for (const junk of [
      null,
      'text',
      42,
      [],
      { conversationId: 5 },
      { conversationId: s.conversation.id, extra: 1 },
    ]) {
      expect(
        await request(s.sockets.member.socket, 'conversation:join', junk),
        JSON.stringify(junk),
      ).toMatchObject({
        ok: false,
        error: { code: 'VALIDATION_ERROR' },
      });
    }
    expect(
      await request(s.sockets.member.socket, 'message:send', {
        conversationId: s.conversation.id,
        content: '',
      }),
    ).toMatchObject({
      ok: false,
      error: { code: 'VALIDATION_ERROR' },
    });
  });
});

describe('REST mutations reach the other participants’ sockets, never an outsider’s', () => {
  it('messages: new (and the seed’s message:received), updated, deleted, reactions, read receipts', async () => {
    const s = await scene();
    const { api } = server;
    const owner = { token: s.owner.accessToken };
    const sent = await sendMessage(api, s.owner, s.conversation.id, 'from REST');
    const created = (await s.sockets.member.next('message:new')) as {
      message: { id: string; content: string };
    };
    expect(created.message).toMatchObject({ id: sent.id, content: 'from REST' });
    expect(await s.sockets.member.next('message:received')).toEqual(created);

    await api.patch(`/api/chat/messages/${sent.id}`, { content: 'edited' }, owner);
    expect(await s.sockets.member.next('message:updated')).toMatchObject({
      message: { id: sent.id, content: 'edited', isEdited: true },
    });

    await api.post(`/api/chat/messages/${sent.id}/reactions`, { emoji: '🎉' }, owner);
    expect(await s.sockets.member.next('message:reaction:added')).toEqual({
      conversationId: s.conversation.id,
      messageId: sent.id,
      userId: s.owner.user.id,
      emoji: '🎉',
    });
    await api.delete(`/api/chat/messages/${sent.id}/reactions/${encodeURIComponent('🎉')}`, owner);
    expect(await s.sockets.member.next('message:reaction:removed')).toMatchObject({ emoji: '🎉' });

    await api.post(`/api/chat/conversations/${s.conversation.id}/read`, {}, owner);
    expect(await s.sockets.member.next('conversation:read')).toMatchObject({
      userId: s.owner.user.id,
      readAt: expect.any(String),
    });

    await api.delete(`/api/chat/messages/${sent.id}`, owner);
    expect(await s.sockets.member.next('message:deleted')).toEqual({
      conversationId: s.conversation.id,
      messageId: sent.id,
    });

    // The sender's own other device hears it too; the outsider hears nothing at all.
    expect(s.sockets.owner.of('message:new')).toHaveLength(1);
    await settle();
    expect(s.sockets.stranger.received).toEqual([]);
  });

  it('conversations: updated, archived, participants joined and left, deleted', async () => {
    const s = await scene();
    const { api } = server;
    const owner = { token: s.owner.accessToken };
    await api.patch(`/api/conversations/${s.conversation.id}`, { title: 'New title' }, owner);
    expect(await s.sockets.member.next('conversation:updated')).toMatchObject({
      changes: ['title'],
      by: s.owner.user.id,
    });
    await api.post(`/api/conversations/${s.conversation.id}/archive`, {}, owner);
    expect(
      await s.sockets.member.next('conversation:updated', (p) =>
        (p as { changes: string[] }).changes.includes('isArchived'),
      ),
    ).toBeTruthy();

    const newcomer = await registerUser(api);
    const newcomerSocket = await socketFor(newcomer);
    await api.post(
      `/api/conversations/${s.conversation.id}/participants`,
      { userId: newcomer.user.id },
      owner,
    );
    expect(await s.sockets.member.next('user:joined')).toMatchObject({
      userId: newcomer.user.id,
      role: 'MEMBER',
    });
    // The newcomer's socket is in the room at once: it hears the next message.
    await sendMessage(api, s.owner, s.conversation.id, 'welcome');
    expect(await newcomerSocket.next('message:new')).toMatchObject({
      message: { content: 'welcome' },
    });

    await api.delete(
      `/api/conversations/${s.conversation.id}/participants/${newcomer.user.id}`,
      owner,
    );
    expect(await s.sockets.member.next('user:left')).toMatchObject({
      userId: newcomer.user.id,
      reason: 'removed',
    });
    expect(await newcomerSocket.next('user:left')).toMatchObject({ userId: newcomer.user.id });
    // …and out of the room at once: the next message does not reach it.
    newcomerSocket.clear();
    await sendMessage(api, s.owner, s.conversation.id, 'after you left');
    await s.sockets.member.next(
      'message:new',
      (p) => (p as { message: { content: string } }).message.content === 'after you left',
    );
    await settle();
    expect(newcomerSocket.received, JSON.stringify(newcomerSocket.received)).toEqual([]);

    await api.delete(`/api/conversations/${s.conversation.id}`, owner);
    expect(await s.sockets.member.next('conversation:deleted')).toEqual({
      conversationId: s.conversation.id,
      by: s.owner.user.id,
    });
    await settle();
    expect(s.sockets.stranger.received).toEqual([]);
  });

  it('a conversation created with me in it is joined live, and says so', async () => {
    const s = await scene();
    const fresh = await createConversation(server.api, s.owner, {
      participantIds: [s.member.user.id],
    });
    expect(await s.sockets.member.next('conversation:created')).toEqual({
      conversationId: fresh.id,
      by: s.owner.user.id,
    });
    await sendMessage(server.api, s.owner, fresh.id, 'in the new one');
    expect(
      await s.sockets.member.next(
        'message:new',
        (p) => (p as { conversationId: string }).conversationId === fresh.id,
      ),
    ).toBeTruthy();
    await settle();
    expect(s.sockets.stranger.received).toEqual([]);
  });

  it('a socket that left a room with conversation:leave stops hearing it, and can come back', async () => {
    const s = await scene();
    await request(s.sockets.member.socket, 'conversation:leave', {
      conversationId: s.conversation.id,
    });
    s.sockets.member.clear();
    await sendMessage(server.api, s.owner, s.conversation.id, 'while away');
    await s.sockets.admin.next('message:new');
    await settle();
    expect(s.sockets.member.of('message:new')).toEqual([]);
    await request(s.sockets.member.socket, 'conversation:join', {
      conversationId: s.conversation.id,
    });
    await sendMessage(server.api, s.owner, s.conversation.id, 'back again');
    expect(await s.sockets.member.next('message:new')).toMatchObject({
      message: { content: 'back again' },
    });
  });
});

describe('the seed’s message:received alias', () => {
  it('is sent by default and not to sockets that connect with seedEvents: false', async () => {
    const s = await scene();
    const modern = await sockets.connect(s.member, { auth: { seedEvents: false } });
    await sendMessage(server.api, s.owner, s.conversation.id, 'hello both');
    await modern.next('message:new');
    await s.sockets.member.next('message:received');
    await settle();
    expect(modern.of('message:received')).toEqual([]);
  });
});

describe('metrics', () => {
  it('counts connected sockets and events in and out by name', async () => {
    const s = await scene();
    await request(s.sockets.member.socket, 'typing:start', { conversationId: s.conversation.id });
    await sendMessage(server.api, s.owner, s.conversation.id, 'counted');
    await s.sockets.member.next('message:new');
    const metrics = (await server.api.get<string>('/metrics')).text;
    const value = (pattern: RegExp) => Number(pattern.exec(metrics)?.[1] ?? NaN);
    expect(value(/^socketio_connected_sockets (\d+)/m)).toBeGreaterThanOrEqual(4);
    expect(
      value(/^socketio_events_received_total\{event="typing:start"\} (\d+)/m),
    ).toBeGreaterThanOrEqual(1);
    expect(
      value(/^socketio_events_sent_total\{event="message:new"\} (\d+)/m),
    ).toBeGreaterThanOrEqual(1);
  });
});
