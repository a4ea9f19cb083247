// Issue 4, acceptance 4 and 6: socket sends share REST's idempotency and rate budget; junk on
// the socket never crashes the server or reaches anyone else, and floods are throttled.
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createConversation, registerUser, type RegisteredUser } from '../factories.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { connectAs, fire, request, settle, socketSuite } from '../support/sockets.js';
import { selectRows } from '../support/sql.js';

let server: TestServer;
const sockets = socketSuite(
  { beforeAll, afterEach, afterAll },
  async () => (server = await startTestServer()),
);

const connect = (user: RegisteredUser) => sockets.connect(user);

const countMessages = async (conversationId: string) =>
  (
    await selectRows<{ n: number }>(
      server.container.database.db,
      sql`select count(*)::int as n from messages where conversation_id = ${conversationId}`,
    )
  )[0]!.n;

describe('idempotency and the shared budget', () => {
  it('creates one message for a repeated clientMessageId, over sockets and REST alike', async () => {
    const user = await registerUser(server.api);
    const conversation = await createConversation(server.api, user);
    const socket = await connect(user);
    const payload = { conversationId: conversation.id, content: 'once', clientMessageId: 'dup-1' };
    const first = await request(socket.socket, 'message:send', payload);
    const again = await request(socket.socket, 'message:send', payload);
    const viaRest = await server.api.post(
      `/api/chat/conversations/${conversation.id}/messages`,
      { content: 'once', clientMessageId: 'dup-1' },
      { token: user.accessToken },
    );
    expect(first).toMatchObject({ ok: true, data: { replayed: false } });
    expect(again).toMatchObject({ ok: true, data: { replayed: true } });
    const id = (first as { data: { message: { id: string } } }).data.message.id;
    expect((again as { data: { message: { id: string } } }).data.message.id).toBe(id);
    expect(viaRest.body).toMatchObject({ data: { message: { id } } });
    expect(await countMessages(conversation.id)).toBe(1);
  });

  it('refuses the 31st message in a minute, REST and socket sends counted together', async () => {
    const user = await registerUser(server.api);
    const conversation = await createConversation(server.api, user);
    const socket = await connect(user);
    for (let i = 0; i < 30; i++) {
      if (i % 2 === 0) {
        const ack = await request(socket.socket, 'message:send', {
          conversationId: conversation.id,
          content: `s${i}`,
        });
        expect(ack, `send ${i}`).toMatchObject({ ok: true });
      } else {
        const response = await server.api.post(
          `/api/chat/conversations/${conversation.id}/messages`,
          { content: `r${i}` },
          { token: user.accessToken },
        );
        expect(response.status, `send ${i}`).toBe(201);
      }
    }
    expect(
      await request(socket.socket, 'message:send', {
        conversationId: conversation.id,
        content: 'one too many',
      }),
    ).toMatchObject({
      ok: false,
      error: { code: 'RATE_LIMITED' },
    });
    const rest = await server.api.post(
      `/api/chat/conversations/${conversation.id}/messages`,
      { content: 'and again' },
      { token: user.accessToken },
    );
    expect(rest.status).toBe(429);
    expect(await countMessages(conversation.id)).toBe(30);
  });
});

describe('junk on the socket', () => {
  async function room() {
    const [attacker, victim] = await Promise.all([
      registerUser(server.api),
      registerUser(server.api),
    ]);
    const conversation = await createConversation(server.api, attacker, {
      participantIds: [victim.user.id],
    });
    const [attackerSocket, victimSocket] = await Promise.all([connect(attacker), connect(victim)]);
    await settle(150);
    attackerSocket.clear();
    victimSocket.clear();
    return { attacker, victim, conversation, attackerSocket, victimSocket };
  }

  it('answers non-object payloads, unknown events and missing acks with errors to the sender only', async () => {
    const { conversation, attackerSocket, victimSocket } = await room();
    const junk: unknown[] = [
      null,
      'text',
      0,
      42,
      true,
      [],
      [conversation.id],
      { conversationId: [conversation.id] },
      { conversationId: conversation.id, content: { $gt: '' } },
    ];
    for (const payload of junk) {
      for (const event of ['conversation:join', 'message:send', 'typing:start', 'message:read']) {
        const ack = await request(attackerSocket.socket, event, payload);
        expect(ack, `${event} ${JSON.stringify(payload)}`).toMatchObject({
          ok: false,
          error: { code: 'VALIDATION_ERROR' },
        });
      }
    }
    // No ack: the failure comes back as an `error` event.
    fire(attackerSocket.socket, 'message:send', 'not an object');
    expect(await attackerSocket.next('error')).toMatchObject({
      code: 'VALIDATION_ERROR',
      event: 'message:send',
    });
    // No payload at all, several arguments, an unknown event with and without an ack.
    fire(attackerSocket.socket, 'typing:start');
    fire(attackerSocket.socket, 'typing:start', { conversationId: conversation.id }, 'extra', 3);
    fire(attackerSocket.socket, 'admin:delete-everything', { all: true });
    expect(await request(attackerSocket.socket, 'no:such:event', {})).toMatchObject({
      ok: false,
      error: { code: 'VALIDATION_ERROR' },
    });
    await settle();
    // The victim heard only the one legitimate typing:start.
    expect(victimSocket.received.map((r) => r.event)).toEqual(['typing:start']);
    expect((await server.api.get('/health')).status).toBe(200);
  });

  it('refuses a huge string with a validation error and closes a connection that sends more than it may', async () => {
    const { conversation, attackerSocket, victimSocket } = await room();
    const big = await request(attackerSocket.socket, 'message:send', {
      conversationId: conversation.id,
      content: 'x'.repeat(40_000),
    });
    expect(big).toMatchObject({ ok: false, error: { code: 'VALIDATION_ERROR' } });
    const gone = new Promise((resolve) => attackerSocket.socket.once('disconnect', resolve));
    fire(attackerSocket.socket, 'message:send', {
      conversationId: conversation.id,
      content: 'y'.repeat(2_000_000),
    });
    await gone;
    await settle();
    // The victim hears only that the attacker went offline.
    expect(victimSocket.received.map((r) => r.event)).toEqual(['user:offline']);
    expect(await countMessages(conversation.id)).toBe(0);
    expect((await server.api.get('/health')).status).toBe(200);
  });

  it('throttles a moderate burst without cutting the client off: the excess is refused with RATE_LIMITED', async () => {
    const { conversation, attackerSocket, victimSocket } = await room();
    const answers = await Promise.all(
      Array.from({ length: 150 }, () =>
        request(attackerSocket.socket, 'message:read', { conversationId: conversation.id }),
      ),
    );
    const ok = answers.filter((a) => a.ok).length;
    const limited = answers.filter((a) => !a.ok && a.error.code === 'RATE_LIMITED').length;
    // A burst's worth is served (more if the bucket refilled while the burst arrived)…
    expect(ok).toBeGreaterThanOrEqual(50);
    // …and the excess refused, every answer one or the other.
    expect(limited).toBeGreaterThan(0);
    expect(ok + limited).toBe(150);
    expect(attackerSocket.socket.connected).toBe(true);
    // Once the bucket refills, events are served again.
    await settle(1_000);
    expect(
      await request(attackerSocket.socket, 'typing:start', { conversationId: conversation.id }),
    ).toMatchObject({ ok: true });
    // The other participant hears it (their frame and the ack travel on different connections).
    await victimSocket.next('typing:start', undefined, 2_000);
    expect(victimSocket.of('typing:start')).toHaveLength(1);
  });

  it('throttles a burst of 10,000 events: the flooder is cut off, the others hear almost nothing, the server carries on', async () => {
    const { attacker, victim, conversation, attackerSocket, victimSocket } = await room();
    const gone = new Promise((resolve) => attackerSocket.socket.once('disconnect', resolve));
    for (let i = 0; i < 10_000; i++) {
      const kind = i % 4;
      if (kind === 0)
        fire(attackerSocket.socket, 'typing:start', { conversationId: conversation.id });
      else if (kind === 1)
        fire(attackerSocket.socket, 'message:send', {
          conversationId: conversation.id,
          content: `spam ${i}`,
        });
      else if (kind === 2) fire(attackerSocket.socket, 'message:send', i);
      else fire(attackerSocket.socket, `junk:${i}`, 'x'.repeat(100));
    }
    await gone;
    await settle(500);
    // At most a burst's worth got through the throttle, and the send budget caps what that can
    // do (events still queued when the flooder is cut off are dropped with the connection).
    const stored = await countMessages(conversation.id);
    expect(stored).toBeLessThanOrEqual(30);
    const heard = victimSocket.received.map((r) => r.event);
    expect(heard.filter((e) => e === 'typing:start').length).toBeLessThanOrEqual(1);
    expect(heard.filter((e) => e === 'message:new').length).toBe(stored);
    expect(
      heard.every((e) =>
        ['typing:start', 'typing:stop', 'message:new', 'message:received', 'user:offline'].includes(
          e,
        ),
      ),
    ).toBe(true);
    // Rate-limit notices were not a flood of their own.
    expect(attackerSocket.of('error').length).toBeLessThan(10);

    // Still serving: the victim sends, a reconnecting attacker is accepted.
    const ok = await request(victimSocket.socket, 'message:send', {
      conversationId: conversation.id,
      content: 'still here',
    });
    expect(ok).toMatchObject({ ok: true });
    const back = await connect(attacker);
    expect(back.socket.connected).toBe(true);
    expect((await server.api.get('/health')).status).toBe(200);
    void victim;
  }, 30_000);

  it('caps one user’s sockets (SOCKETS_MAX_PER_USER, 20): of 25 opened at once, 20 connect', async () => {
    const user = await registerUser(server.api);
    const attempts = await Promise.allSettled(
      Array.from({ length: 25 }, () => connectAs(server.url, user.accessToken)),
    );
    const connected = attempts.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
    const refused = attempts.flatMap((a) => (a.status === 'rejected' ? [a.reason as Error] : []));
    try {
      expect(connected).toHaveLength(20);
      expect(refused.map((e) => e.message)).toEqual(
        Array(5).fill('Too many connections for this user'),
      );
      // Another user is not affected; a closed socket frees its place.
      const other = await connect(await registerUser(server.api));
      expect(other.socket.connected).toBe(true);
      const gone = new Promise((resolve) => connected[0]!.socket.once('disconnect', resolve));
      connected[0]!.close();
      await gone;
      await settle(100);
      const again = await connectAs(server.url, user.accessToken);
      connected.push(again);
      expect(again.socket.connected).toBe(true);
    } finally {
      for (const socket of connected) socket.close();
    }
  });

  it('shares one event budget between a user’s sockets: two sockets get no more than one', async () => {
    const { conversation, attacker } = await room();
    const second = await connect(attacker);
    const third = await connect(attacker);
    const answers = await Promise.all(
      [second, third].flatMap((s) =>
        Array.from({ length: 100 }, () =>
          request(s.socket, 'message:read', { conversationId: conversation.id }),
        ),
      ),
    );
    const ok = answers.filter((a) => a.ok).length;
    // One burst (60) and what refilled while the 200 arrived, not two bursts' worth.
    expect(ok).toBeGreaterThanOrEqual(50);
    expect(ok).toBeLessThan(100);
    expect(answers.filter((a) => !a.ok && a.error.code === 'RATE_LIMITED')).toHaveLength(200 - ok);
  });
});
