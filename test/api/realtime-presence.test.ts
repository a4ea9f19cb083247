// Issue 4, acceptance 3: presence goes only to people who share a conversation, and a user with
// two devices goes offline only when both are gone. Typing expires by itself.
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createConversation, registerUser, type RegisteredUser } from '../factories.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { socketSuite, request, settle } from '../support/sockets.js';
import { selectRows } from '../support/sql.js';

let server: TestServer;
const sockets = socketSuite(
  { beforeAll, afterEach, afterAll },
  async () => (server = await startTestServer()),
);

const connect = (user: RegisteredUser) => sockets.connect(user);

describe('presence', () => {
  it('tells only users who share a conversation', async () => {
    const [alice, friend, stranger] = await Promise.all(
      [1, 2, 3].map(() => registerUser(server.api)),
    );
    await createConversation(server.api, alice!, { participantIds: [friend!.user.id] });
    const friendSocket = await connect(friend!);
    const strangerSocket = await connect(stranger!);
    await settle(100);
    friendSocket.clear();
    strangerSocket.clear();

    const aliceSocket = await connect(alice!);
    expect(await friendSocket.next('user:online')).toMatchObject({ userId: alice!.user.id });
    aliceSocket.close();
    expect(await friendSocket.next('user:offline')).toMatchObject({ userId: alice!.user.id });
    await settle();
    expect(strangerSocket.received).toEqual([]);
  });

  it('GET a conversation says who is online now, for the people already connected', async () => {
    const [alice, friend, away] = await Promise.all([1, 2, 3].map(() => registerUser(server.api)));
    const conversation = await createConversation(server.api, alice!, {
      participantIds: [friend!.user.id, away!.user.id],
    });
    const onlineOf = async () => {
      const response = await server.api.get<{
        data: { participants: Array<{ userId: string; online: boolean }> };
      }>(`/api/conversations/${conversation.id}`, { token: alice!.accessToken });
      expect(response.status).toBe(200);
      return Object.fromEntries(response.body.data.participants.map((p) => [p.userId, p.online]));
    };
    expect(await onlineOf()).toEqual({
      [alice!.user.id]: false,
      [friend!.user.id]: false,
      [away!.user.id]: false,
    });
    const phone = await connect(friend!);
    const laptop = await connect(friend!);
    await expect.poll(async () => (await onlineOf())[friend!.user.id]).toBe(true);
    expect((await onlineOf())[away!.user.id]).toBe(false);
    phone.close();
    // One device left: still online, however long we look.
    await settle(200);
    expect((await onlineOf())[friend!.user.id]).toBe(true);
    laptop.close();
    await expect.poll(async () => (await onlineOf())[friend!.user.id]).toBe(false);
  });

  it('keeps a user with two devices online until the second one closes', async () => {
    const [alice, friend] = await Promise.all([registerUser(server.api), registerUser(server.api)]);
    await createConversation(server.api, alice, { participantIds: [friend.user.id] });
    const friendSocket = await connect(friend);
    const phone = await connect(alice);
    const laptop = await connect(alice);
    await friendSocket.next('user:online');
    await settle(100);
    expect(friendSocket.of('user:online')).toHaveLength(1); // the second device is not news

    phone.close();
    await settle();
    expect(friendSocket.of('user:offline')).toEqual([]);
    laptop.close();
    expect(await friendSocket.next('user:offline')).toMatchObject({ userId: alice.user.id });
  });

  it('records lastActiveAt when a user connects and when their last socket leaves', async () => {
    const alice = await registerUser(server.api);
    const before = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const socket = await connect(alice);
    await settle(100);
    const read = async () =>
      (
        await selectRows<{ at: Date }>(
          server.container.database.db,
          sql`select last_active_at as at from users where id = ${alice.user.id}`,
        )
      )[0]!.at;
    const connected = new Date(await read()).getTime();
    expect(connected).toBeGreaterThan(before);
    await new Promise((resolve) => setTimeout(resolve, 20));
    socket.close();
    await settle(200);
    expect(new Date(await read()).getTime()).toBeGreaterThan(connected);
  });
});

describe('typing', () => {
  it('stops by itself a few seconds after a start without a stop', async () => {
    const [alice, friend] = await Promise.all([registerUser(server.api), registerUser(server.api)]);
    const conversation = await createConversation(server.api, alice, {
      participantIds: [friend.user.id],
    });
    const [aliceSocket, friendSocket] = await Promise.all([connect(alice), connect(friend)]);
    await request(aliceSocket.socket, 'typing:start', { conversationId: conversation.id });
    await friendSocket.next('typing:start');
    const started = Date.now();
    await friendSocket.next('typing:stop', undefined, 8_000);
    const after = Date.now() - started;
    expect(after).toBeGreaterThan(4_000);
    expect(after).toBeLessThan(7_000);
  });

  it('stops when the typist disconnects', async () => {
    const [alice, friend] = await Promise.all([registerUser(server.api), registerUser(server.api)]);
    const conversation = await createConversation(server.api, alice, {
      participantIds: [friend.user.id],
    });
    const [aliceSocket, friendSocket] = await Promise.all([connect(alice), connect(friend)]);
    await request(aliceSocket.socket, 'typing:start', { conversationId: conversation.id });
    await friendSocket.next('typing:start');
    aliceSocket.close();
    expect(await friendSocket.next('typing:stop', undefined, 1_000)).toMatchObject({
      userId: alice.user.id,
    });
  });
});
