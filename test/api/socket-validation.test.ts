// Issue 8, acceptance 7: one validation for both doors. The REST corpus of bad message bodies,
// sent through message:send: each gets a VALIDATION_ERROR ack as its REST twin gets a 400,
// nothing is stored, no message budget is spent, and no ERROR line is logged for a client's
// mistake.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRoom, type MessageData } from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { BAD_MESSAGE_BODIES } from '../support/bad-message-bodies.js';
import { capturingLogger } from '../support/logs.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { connectAs, request } from '../support/sockets.js';

let server: TestServer;
let entries: Array<Record<string, unknown>>;
beforeAll(async () => {
  const captured = capturingLogger();
  entries = captured.entries;
  // A budget of three messages: spending any on a refused one would show.
  server = await startTestServer({ MESSAGE_RATE_LIMIT: '3' }, { logger: captured.logger });
});
afterAll(async () => {
  await server.close();
});

describe('message:send applies exactly the checks of POST …/messages', () => {
  it('refuses the whole bad-input corpus on both doors, stores nothing and spends no budget', async () => {
    const room = await buildRoom(server.api);
    const cid = room.conversation.id;
    const socket = await connectAs(server.url, room.member.accessToken);
    try {
      for (const { why, raw } of BAD_MESSAGE_BODIES) {
        const rest = await server.api.post(`/api/chat/conversations/${cid}/messages`, undefined, {
          raw,
          token: room.member.accessToken,
          headers: { 'content-type': 'application/json' },
        });
        expect(rest.status, `REST: ${why}`).toBe(400);
        expect(rest.body, `REST: ${why}`).toMatchObject({ code: 'VALIDATION_ERROR' });

        const payload = { ...(JSON.parse(raw) as object), conversationId: cid };
        const ack = await request(socket.socket, 'message:send', payload);
        expect(ack, `socket: ${why}`).toMatchObject({
          ok: false,
          error: { code: 'VALIDATION_ERROR' },
        });
      }
      const page = await server.api.get<Envelope<{ messages: MessageData[] }>>(
        `/api/chat/conversations/${cid}/messages`,
        { token: room.member.accessToken },
      );
      expect(page.body.data!.messages).toEqual([]);
      // The whole budget is still there: three sends go through, over both doors.
      const ok = await Promise.all([
        server.api.post(
          `/api/chat/conversations/${cid}/messages`,
          { content: 'one' },
          { token: room.member.accessToken },
        ),
        request(socket.socket, 'message:send', { conversationId: cid, content: 'two' }),
        request(socket.socket, 'message:send', { conversationId: cid, content: 'three' }),
      ]);
      expect(ok.map((r) => ('status' in r ? r.status === 201 : r.ok))).toEqual([true, true, true]);
      expect(entries.filter((e) => e.level === 'error')).toEqual([]);
    } finally {
      socket.close();
    }
  });

  it('a deeply nested payload is refused without harm', async () => {
    const room = await buildRoom(server.api);
    const socket = await connectAs(server.url, room.member.accessToken);
    try {
      let nested: unknown = 'x\u0000';
      for (let i = 0; i < 1_000; i++) nested = [nested];
      const ack = await request(socket.socket, 'message:send', {
        conversationId: room.conversation.id,
        content: 'hi',
        metadata: { nested },
      });
      expect(ack).toMatchObject({ ok: false, error: { code: 'VALIDATION_ERROR' } });
      expect(entries.filter((e) => e.level === 'error')).toEqual([]);
    } finally {
      socket.close();
    }
  });
});
