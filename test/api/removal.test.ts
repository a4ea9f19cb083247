// Issue 8, acceptance 2: removal takes effect on every channel at once. A participant removed
// (or leaving), and every participant of a deleted conversation, stop receiving anything of it:
// the deltas and end of answers already streaming, typing, presence; resume (socket or SSE) and
// stop answer 403/404 for them. Deleting a conversation stops its running answers upstream.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildRoom, type RegisteredUser } from '../factories.js';
import { sendForAnswer, startFakeAiServer } from '../support/ai.js';
import type { FakeOpenAi } from '../support/fake-openai.js';
import type { TestServer } from '../support/server.js';
import { request, settle, socketSuite, type RecordingSocket } from '../support/sockets.js';

let fake: FakeOpenAi;
let server: TestServer;
const sockets = socketSuite({ beforeAll, afterEach, afterAll }, async () => {
  const started = await startFakeAiServer();
  ({ fake, server } = started);
  return started;
});
afterEach(() => {
  fake.script.splice(0);
});

// A slow answer: 80 tokens of ~100 bytes, one every 25 ms (a delta every ~5 tokens).
const SLOW = {
  kind: 'stream' as const,
  tokens: Array.from({ length: 80 }, (_, i) => ` t${i}:${'x'.repeat(95)}`),
  delayMs: 25,
};

const about = (conversationId: string, generationId: string) => (payload: unknown) => {
  const p = payload as { conversationId?: string; generationId?: string };
  return p.conversationId === conversationId || p.generationId === generationId;
};

/** Everything a socket received about a conversation or its answer since `index`. */
const heardSince = (
  socket: RecordingSocket,
  index: number,
  conversationId: string,
  generationId: string,
) =>
  socket.received
    .slice(index)
    .filter((r) => about(conversationId, generationId)(r.payload))
    .map((r) => r.event);

/** Opens the SSE stream of an answer as `user`; resolves with the response (headers read). */
const openSse = (user: RegisteredUser, generationId: string) =>
  fetch(`${server.url}/api/chat/generations/${generationId}/stream`, {
    headers: { authorization: `Bearer ${user.accessToken}`, accept: 'text/event-stream' },
  });

async function startAnswer() {
  const room = await buildRoom(server.api);
  const [owner, member] = await Promise.all([
    sockets.connect(room.owner),
    sockets.connect(room.member),
  ]);
  fake.script.push(SLOW);
  const { generation } = await sendForAnswer(
    server,
    room.owner,
    room.conversation.id,
    'tell me a long story',
  );
  // Both are hearing it.
  await Promise.all(
    [owner, member].map((s) =>
      s.next(
        'ai:stream:delta',
        (p) => (p as { generationId: string }).generationId === generation.id,
      ),
    ),
  );
  return { room, owner, member, generation };
}

describe.each([
  ['removed by the owner', 'removed'],
  ['leaving', 'left'],
] as const)('a participant %s', (_, how) => {
  it('hears nothing more of the conversation: not the answer streaming, not typing, not presence', async () => {
    const { room, owner, member, generation } = await startAnswer();
    const cid = room.conversation.id;
    const sse = await openSse(room.member, generation.id);
    expect(sse.status).toBe(200);
    const sseText = sse.text();

    const removed = await server.api.delete(
      `/api/conversations/${cid}/participants/${room.member.user.id}`,
      { token: (how === 'removed' ? room.owner : room.member).accessToken },
    );
    expect(removed.status).toBe(200);
    await member.next('user:left', (p) => (p as { userId: string }).userId === room.member.user.id);
    const mark = member.received.length;

    // The SSE stream ends at once, before the answer does.
    const streamed = await Promise.race([sseText, settle(1_500).then(() => 'still open')]);
    expect(streamed).not.toBe('still open');
    expect(streamed).not.toContain('event: end');

    // The others go on: typing, then the rest of the answer.
    const admin = await sockets.connect(room.admin);
    await request(admin.socket, 'typing:start', { conversationId: cid });
    await owner.next(
      'ai:stream:end',
      (p) => (p as { generationId: string }).generationId === generation.id,
      10_000,
    );
    await owner.next(
      'typing:start',
      (p) => (p as { userId: string }).userId === room.admin.user.id,
    );
    admin.close(); // presence: the admin goes offline (they share nothing else with the member)
    await owner.next(
      'user:offline',
      (p) => (p as { userId: string }).userId === room.admin.user.id,
    );
    await settle(200);
    expect(heardSince(member, mark, cid, generation.id)).toEqual([]);
    expect(member.received.slice(mark).map((r) => r.event)).not.toContain('user:offline');

    // Resume and stop: refused on both doors.
    const resume = await request(member.socket, 'generation:resume', {
      generationId: generation.id,
      afterSeq: -1,
    });
    expect(resume).toMatchObject({ ok: false, error: { code: 'PERMISSION_DENIED' } });
    const stop = await request(member.socket, 'generation:stop', { generationId: generation.id });
    expect(stop).toMatchObject({ ok: false, error: { code: 'PERMISSION_DENIED' } });
    expect((await openSse(room.member, generation.id)).status).toBe(403);
    expect(
      (
        await server.api.post(`/api/chat/generations/${generation.id}/stop`, undefined, {
          token: room.member.accessToken,
        })
      ).status,
    ).toBe(403);
  });
});

describe('a deleted conversation', () => {
  it('stops its running answers upstream and tells nobody anything more of them', async () => {
    const { room, owner, member, generation } = await startAnswer();
    const cid = room.conversation.id;
    const sse = await openSse(room.member, generation.id);
    const sseText = sse.text();
    const request_ = fake.requests.at(-1)!;

    const deleted = await server.api.delete(`/api/conversations/${cid}`, {
      token: room.owner.accessToken,
    });
    expect(deleted.status).toBe(200);
    await Promise.all(
      [owner, member].map((s) =>
        s.next(
          'conversation:deleted',
          (p) => (p as { conversationId: string }).conversationId === cid,
        ),
      ),
    );
    const marks = [owner.received.length, member.received.length];
    const streamed = await Promise.race([sseText, settle(1_500).then(() => 'still open')]);
    expect(streamed).not.toBe('still open');

    // The upstream request was aborted: the fake server saw the client hang up.
    for (let i = 0; i < 40 && !request_.clientHungUp; i++) await settle(50);
    expect(request_.clientHungUp).toBe(true);
    await settle(500);
    expect(heardSince(owner, marks[0]!, cid, generation.id)).toEqual([]);
    expect(heardSince(member, marks[1]!, cid, generation.id)).toEqual([]);

    for (const [socket, user] of [
      [owner, room.owner],
      [member, room.member],
    ] as const) {
      const resume = await request(socket.socket, 'generation:resume', {
        generationId: generation.id,
        afterSeq: -1,
      });
      expect(resume).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
      expect((await openSse(user, generation.id)).status).toBe(404);
      expect(
        (
          await server.api.post(`/api/chat/generations/${generation.id}/stop`, undefined, {
            token: user.accessToken,
          })
        ).status,
      ).toBe(404);
    }
  });
});
