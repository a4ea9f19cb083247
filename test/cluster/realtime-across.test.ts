// Issue 9, acceptance 1: clients on two API instances share a conversation as if on one. Every
// event crosses from A to B and back, and arrives exactly once (the Socket.IO Redis adapter
// fans out; nothing may be delivered by two paths). Real processes: 2 instances + 1 worker.
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  createConversation,
  registerUser,
  sendMessage,
  type MessageData,
  type RegisteredUser,
} from '../factories.js';
import { useCluster, type ClusterInstance } from '../support/cluster.js';
import { request, settle, type RecordingSocket } from '../support/sockets.js';

const cluster = useCluster({ instances: 2, workers: 1 });
const A = (): ClusterInstance => cluster().instances[0]!;
const B = (): ClusterInstance => cluster().instances[1]!;

/** How long after an event's first copy a duplicate would have arrived. */
const DUPLICATE_WINDOW_MS = 400;

type Match = (payload: unknown) => boolean;
const field =
  (key: string, value: unknown): Match =>
  (payload) =>
    (payload as Record<string, unknown>)[key] === value;
const messageWithId =
  (id: string): Match =>
  (payload) =>
    (payload as { message: { id: string } }).message.id === id;

/** Each socket hears the event once: waits for every first copy, then for any second one. */
async function expectOnce(
  expectations: Array<[socket: RecordingSocket, event: string, match: Match]>,
): Promise<void> {
  await Promise.all(expectations.map(([socket, event, match]) => socket.next(event, match, 5_000)));
  await settle(DUPLICATE_WINDOW_MS);
  for (const [socket, event, match] of expectations) {
    const copies = socket.of(event).filter(match);
    expect(copies, `${event} copies: ${JSON.stringify(copies)}`).toHaveLength(1);
  }
}

/**
 * The PUBLISH commands Redis runs from now on, read from MONITOR on a raw connection: the size
 * in bytes of the largest payload (MONITOR escapes non-ASCII bytes as \xNN: counted as one).
 */
async function watchPublishes(url: string) {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let buffered = '';
  let count = 0;
  let largest = 0;
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    let end: number;
    while ((end = buffered.indexOf('\r\n')) >= 0) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const command = /^\+[\d.]+ \[[^\]]*\] "(\w+)"/.exec(line)?.[1]?.toLowerCase();
      if (command !== 'publish') continue;
      count += 1;
      const payload = line.slice(line.lastIndexOf(' "') + 2, -1);
      const bytes = payload.replace(/\\x[0-9a-f]{2}/g, '.').replace(/\\./g, '.').length;
      largest = Math.max(largest, bytes);
    }
  });
  socket.write('MONITOR\r\n');
  await settle(100);
  return { count: () => count, largest: () => largest, stop: () => socket.destroy() };
}

async function expectNothing(socket: RecordingSocket, event: string, match: Match = () => true) {
  await settle(DUPLICATE_WINDOW_MS);
  expect(socket.of(event).filter(match)).toEqual([]);
}

/** Alice's socket is on A, Bob's on B; they share a conversation. Fresh users every test. */
async function pair() {
  const [alice, bob] = await Promise.all([registerUser(A().api), registerUser(B().api)]);
  const conversation = await createConversation(A().api, alice, {
    participantIds: [bob.user.id],
  });
  const [onA, onB] = await Promise.all([A().connect(alice), B().connect(bob)]);
  await settle(200); // presence notices of the connects
  onA.clear();
  onB.clear();
  return { alice, bob, conversationId: conversation.id, onA, onB };
}

const send = (
  instance: ClusterInstance,
  user: RegisteredUser,
  conversationId: string,
  text: string,
) => sendMessage(instance.api, user, conversationId, text);

describe('messages cross instances exactly once', () => {
  it('a REST send through A reaches the socket on B (and the sender’s own on A), and the reverse', async () => {
    const { alice, bob, conversationId, onA, onB } = await pair();
    const fromA = await send(A(), alice, conversationId, 'through A');
    await expectOnce([
      [onB, 'message:new', messageWithId(fromA.id)],
      [onB, 'message:received', messageWithId(fromA.id)],
      [onA, 'message:new', messageWithId(fromA.id)],
    ]);
    expect(onB.of('message:new')[0]).toMatchObject({
      conversationId,
      message: { content: 'through A', userId: alice.user.id },
    });

    const fromB = await send(B(), bob, conversationId, 'through B');
    await expectOnce([
      [onA, 'message:new', messageWithId(fromB.id)],
      [onB, 'message:new', messageWithId(fromB.id)],
    ]);
  });

  it('a socket message:send on A reaches B, and one on B reaches A', async () => {
    const { conversationId, onA, onB } = await pair();
    const sentOnA = await request(onA.socket, 'message:send', {
      conversationId,
      content: 'socket on A',
    });
    expect(sentOnA).toMatchObject({ ok: true });
    const idA = (sentOnA as { data: { message: MessageData } }).data.message.id;
    await expectOnce([
      [onB, 'message:new', messageWithId(idA)],
      [onA, 'message:new', messageWithId(idA)],
    ]);

    const sentOnB = await request(onB.socket, 'message:send', {
      conversationId,
      content: 'socket on B',
    });
    expect(sentOnB).toMatchObject({ ok: true });
    const idB = (sentOnB as { data: { message: MessageData } }).data.message.id;
    await expectOnce([
      [onA, 'message:new', messageWithId(idB)],
      [onB, 'message:new', messageWithId(idB)],
    ]);
  });

  it('a message of 32,000 characters (~96 KB) reaches B whole, and nothing over 64 KB is published on Redis', async () => {
    const { alice, conversationId, onB } = await pair();
    const publishes = await watchPublishes(cluster().redis.url);
    try {
      const content = '€'.repeat(32_000); // 3 bytes each in UTF-8
      const sent = await sendMessage(A().api, alice, conversationId, content);
      await expectOnce([[onB, 'message:new', messageWithId(sent.id)]]);
      const [heard] = onB.of('message:new').filter(messageWithId(sent.id)) as Array<{
        message: MessageData;
      }>;
      expect(heard!.message.content).toBe(content);
      expect(publishes.count()).toBeGreaterThan(0);
      expect(publishes.largest()).toBeLessThanOrEqual(64 * 1024);
    } finally {
      publishes.stop();
    }
  });

  it('edits and deletions through B reach A', async () => {
    const { alice, conversationId, onA, onB } = await pair();
    const message = await send(B(), alice, conversationId, 'first draft');
    await expectOnce([[onA, 'message:new', messageWithId(message.id)]]);
    const token = { token: alice.accessToken };
    expect(
      (await B().api.patch(`/api/chat/messages/${message.id}`, { content: 'v2' }, token)).status,
    ).toBe(200);
    await expectOnce([
      [onA, 'message:updated', messageWithId(message.id)],
      [onB, 'message:updated', messageWithId(message.id)],
    ]);
    expect((await B().api.delete(`/api/chat/messages/${message.id}`, token)).status).toBe(200);
    await expectOnce([
      [onA, 'message:deleted', field('messageId', message.id)],
      [onB, 'message:deleted', field('messageId', message.id)],
    ]);
  });
});

describe('typing, reactions and read receipts cross instances exactly once', () => {
  it('typing on A is seen on B and the reverse; never by the typist', async () => {
    const { alice, bob, conversationId, onA, onB } = await pair();
    expect(await request(onA.socket, 'typing:start', { conversationId })).toMatchObject({
      ok: true,
    });
    await expectOnce([[onB, 'typing:start', field('userId', alice.user.id)]]);
    expect(await request(onA.socket, 'typing:stop', { conversationId })).toMatchObject({
      ok: true,
    });
    await expectOnce([[onB, 'typing:stop', field('userId', alice.user.id)]]);

    await request(onB.socket, 'typing:start', { conversationId });
    await expectOnce([[onA, 'typing:start', field('userId', bob.user.id)]]);
    await request(onB.socket, 'typing:stop', { conversationId });
    await expectOnce([[onA, 'typing:stop', field('userId', bob.user.id)]]);

    expect(onA.of('typing:start').filter(field('userId', alice.user.id))).toEqual([]);
    expect(onB.of('typing:start').filter(field('userId', bob.user.id))).toEqual([]);
  });

  it('reactions added and removed through B reach A, and the reverse', async () => {
    const { alice, bob, conversationId, onA, onB } = await pair();
    const message = await send(A(), alice, conversationId, 'react to me');
    const path = `/api/chat/messages/${message.id}/reactions`;
    const byBob = { token: bob.accessToken };
    expect((await B().api.post(path, { emoji: '🎉' }, byBob)).status).toBe(201);
    await expectOnce([[onA, 'message:reaction:added', field('userId', bob.user.id)]]);
    expect(onA.of('message:reaction:added')[0]).toEqual({
      conversationId,
      messageId: message.id,
      userId: bob.user.id,
      emoji: '🎉',
    });
    expect((await B().api.delete(`${path}/${encodeURIComponent('🎉')}`, byBob)).status).toBe(200);
    await expectOnce([[onA, 'message:reaction:removed', field('userId', bob.user.id)]]);

    expect((await A().api.post(path, { emoji: '👍' }, { token: alice.accessToken })).status).toBe(
      201,
    );
    await expectOnce([[onB, 'message:reaction:added', field('userId', alice.user.id)]]);
  });

  it('read receipts: message:read on B reaches A, REST read on A reaches B', async () => {
    const { alice, bob, conversationId, onA, onB } = await pair();
    const message = await send(A(), alice, conversationId, 'read me');
    await onB.next('message:new', messageWithId(message.id));

    const read = await request(onB.socket, 'message:read', {
      conversationId,
      messageId: message.id,
    });
    expect(read).toMatchObject({ ok: true });
    await expectOnce([[onA, 'conversation:read', field('userId', bob.user.id)]]);
    expect(onA.of('conversation:read')[0]).toMatchObject({
      conversationId,
      userId: bob.user.id,
      messageId: message.id,
      readAt: expect.any(String),
    });

    const rest = await A().api.post(
      `/api/chat/conversations/${conversationId}/read`,
      {},
      { token: alice.accessToken },
    );
    expect(rest.status).toBe(200);
    await expectOnce([[onB, 'conversation:read', field('userId', alice.user.id)]]);
  });
});

describe('presence across instances', () => {
  it('a user connecting on A is online for a friend on B, and offline when they go', async () => {
    const [alice, bob] = await Promise.all([registerUser(A().api), registerUser(B().api)]);
    const conversation = await createConversation(A().api, alice, {
      participantIds: [bob.user.id],
    });
    const onB = await B().connect(bob);
    await settle(200);
    onB.clear();

    const onA = await A().connect(alice);
    await expectOnce([[onB, 'user:online', field('userId', alice.user.id)]]);
    // A page opened on B now shows alice online from the start (GET, not only the events).
    const aliceOnline = async () => {
      const response = await B().api.get<{
        data: { participants: Array<{ userId: string; online: boolean }> };
      }>(`/api/conversations/${conversation.id}`, { token: bob.accessToken });
      return response.body.data.participants.find((p) => p.userId === alice.user.id)?.online;
    };
    expect(await aliceOnline()).toBe(true);
    onA.close();
    await expectOnce([[onB, 'user:offline', field('userId', alice.user.id)]]);
    expect(await aliceOnline()).toBe(false);
  });

  it('a user with one device on A and one on B stays online until both are gone', async () => {
    const [alice, bob] = await Promise.all([registerUser(A().api), registerUser(A().api)]);
    await createConversation(A().api, alice, { participantIds: [bob.user.id] });
    const friend = await A().connect(bob);
    await settle(200);
    friend.clear();

    const phone = await A().connect(alice);
    await friend.next('user:online', field('userId', alice.user.id));
    const laptop = await B().connect(alice);
    await settle(DUPLICATE_WINDOW_MS);
    // The second device, on the other instance, is not news.
    expect(friend.of('user:online')).toHaveLength(1);

    phone.close();
    await expectNothing(friend, 'user:offline');
    laptop.close();
    await expectOnce([[friend, 'user:offline', field('userId', alice.user.id)]]);
  });
});

describe('membership changes through A apply to sockets on B', () => {
  it('a participant added through A hears the next message on B, exactly once', async () => {
    const { alice, conversationId, onB } = await pair();
    const carol = await registerUser(B().api);
    const carolOnB = await B().connect(carol);
    await settle(200);
    carolOnB.clear();

    const added = await A().api.post(
      `/api/conversations/${conversationId}/participants`,
      { userId: carol.user.id },
      { token: alice.accessToken },
    );
    expect(added.status).toBe(201);
    await expectOnce([[onB, 'user:joined', field('userId', carol.user.id)]]);

    const message = await send(A(), alice, conversationId, 'welcome, Carol');
    await expectOnce([[carolOnB, 'message:new', messageWithId(message.id)]]);
  });

  it('a conversation created through A with a user of B is joined by their socket on B', async () => {
    const [alice, carol] = await Promise.all([registerUser(A().api), registerUser(B().api)]);
    const carolOnB = await B().connect(carol);
    const conversation = await createConversation(A().api, alice, {
      participantIds: [carol.user.id],
    });
    await expectOnce([
      [carolOnB, 'conversation:created', field('conversationId', conversation.id)],
    ]);
    const message = await send(A(), alice, conversation.id, 'in the new one');
    await expectOnce([[carolOnB, 'message:new', messageWithId(message.id)]]);
  });

  it('a participant removed through A is told on B, then hears nothing more of it', async () => {
    const { alice, conversationId, onB } = await pair();
    const carol = await registerUser(B().api);
    await A().api.post(
      `/api/conversations/${conversationId}/participants`,
      { userId: carol.user.id },
      { token: alice.accessToken },
    );
    const carolOnB = await B().connect(carol);
    const before = await send(A(), alice, conversationId, 'while Carol is here');
    await carolOnB.next('message:new', messageWithId(before.id), 5_000);

    const removed = await A().api.delete(
      `/api/conversations/${conversationId}/participants/${carol.user.id}`,
      { token: alice.accessToken },
    );
    expect(removed.status).toBe(200);
    await expectOnce([
      [carolOnB, 'user:left', field('userId', carol.user.id)],
      [onB, 'user:left', field('userId', carol.user.id)],
    ]);
    expect(carolOnB.of('user:left')[0]).toMatchObject({ conversationId, reason: 'removed' });

    carolOnB.clear();
    const after = await send(A(), alice, conversationId, 'after Carol left');
    await expectOnce([[onB, 'message:new', messageWithId(after.id)]]);
    expect(carolOnB.received, JSON.stringify(carolOnB.received)).toEqual([]);
  });
});
