// Issue 5, acceptance 1: a real model behind the local provider (../shared/models/stories260K.gguf,
// node-llama-cpp in-process): streamed to every participant's socket, stored as streamed, and a
// conversation longer than its 512-token window still answered, the oldest messages left out.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildRoom, sendMessage, type MessageData } from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { socketSuite, settle, type RecordingSocket } from '../support/sockets.js';
import { haveTestModel, skipNote, TEST_MODEL_PATH } from '../support/test-model.js';

interface Start {
  generationId: string;
  messageId: string;
  conversationId: string;
  seq: number;
}
interface Delta {
  generationId: string;
  seq: number;
  delta: string;
}
interface End {
  generationId: string;
  seq: number;
  status: string;
  finishReason: string;
  usage: { promptTokens: number; completionTokens: number; totalTokens: number };
}
interface StoredMessage extends MessageData {
  status: string;
  role: string;
  parentId: string | null;
  model: string | null;
  usage: End['usage'] | null;
  finishReason: string | null;
  metadata: { context?: { included: number; dropped: number; oldestIncludedId: string } } | null;
}

let server: TestServer;
const sockets = socketSuite({ beforeAll, afterEach, afterAll }, async () => {
  server = await startTestServer({
    AI_PROVIDER: 'local',
    AI_MODEL_PATH: TEST_MODEL_PATH,
    AI_LOCAL_THREADS: '1',
    AI_MAX_OUTPUT_TOKENS: '48',
    MESSAGE_RATE_LIMIT: '100000',
  });
  return server;
});

/** Everything one socket heard of one generation, once it ended. */
async function heard(socket: RecordingSocket, generationId: string) {
  await socket.next('ai:stream:end', (p) => (p as End).generationId === generationId, 20_000);
  const of = <T>(event: string) =>
    socket
      .of(event)
      .filter((p) => (p as { generationId: string }).generationId === generationId) as T[];
  return {
    start: of<Start>('ai:stream:start'),
    deltas: of<Delta>('ai:stream:delta'),
    end: of<End>('ai:stream:end'),
  };
}

async function storedMessage(
  token: string,
  conversationId: string,
  id: string,
): Promise<StoredMessage> {
  const page = await server.api.get<Envelope<{ messages: StoredMessage[] }>>(
    `/api/chat/conversations/${conversationId}/messages?limit=100`,
    { token },
  );
  return page.body.data!.messages.find((m) => m.id === id)!;
}

describe.skipIf(!haveTestModel)(`local provider with the real test model${skipNote}`, () => {
  it('streams start, gap-free deltas and end to every participant, and stores exactly what streamed', async () => {
    const room = await buildRoom(server.api);
    const [ownerSocket, memberSocket] = await Promise.all([
      sockets.connect(room.owner),
      sockets.connect(room.member),
    ]);
    const sent = await server.api.post<
      Envelope<{ message: MessageData; generation: { id: string; messageId: string } }>
    >(
      `/api/chat/conversations/${room.conversation.id}/messages`,
      { content: 'Once upon a time' },
      { token: room.owner.accessToken },
    );
    expect(sent.status).toBe(201);
    const { generation, message: userMessage } = sent.body.data!;
    expect(generation).toMatchObject({ id: expect.any(String), messageId: expect.any(String) });

    for (const socket of [ownerSocket, memberSocket]) {
      const { start, deltas, end } = await heard(socket, generation.id);
      expect(start).toEqual([
        {
          generationId: generation.id,
          messageId: generation.messageId,
          conversationId: room.conversation.id,
          seq: 0,
        },
      ]);
      expect(deltas.length).toBeGreaterThan(0);
      expect(deltas.map((d) => d.seq)).toEqual(deltas.map((_, i) => i + 1)); // gap-free from 1
      expect(end).toHaveLength(1);
      expect(end[0]).toMatchObject({ seq: deltas.length + 1, status: 'SENT' });
      expect(end[0]!.usage.completionTokens).toBeGreaterThan(0);
      expect(end[0]!.usage.promptTokens).toBeGreaterThan(0);

      const stored = await storedMessage(
        room.member.accessToken,
        room.conversation.id,
        generation.messageId,
      );
      expect(stored.content).toBe(deltas.map((d) => d.delta).join(''));
      expect(stored).toMatchObject({
        role: 'ASSISTANT',
        status: 'SENT',
        parentId: userMessage.id,
        model: 'stories260K',
        usage: end[0]!.usage,
        finishReason: end[0]!.finishReason,
      });
    }
    // The AI typed as "ai-assistant" while it wrote.
    expect(memberSocket.of('typing:start')).toContainEqual(
      expect.objectContaining({ userId: 'ai-assistant' }),
    );
    expect(memberSocket.of('typing:stop')).toContainEqual(
      expect.objectContaining({ userId: 'ai-assistant' }),
    );
  });

  it('answers a conversation longer than the 512-token window, dropping the oldest messages', async () => {
    const room = await buildRoom(server.api);
    const story = (i: number) =>
      `Chapter ${i}. ` +
      'The little dog ran to the park and played with a big red ball all day long. '.repeat(6);
    const earlier: MessageData[] = [];
    for (let i = 0; i < 8; i++) {
      earlier.push(
        await sendMessage(server.api, room.owner, room.conversation.id, {
          content: story(i),
          ai: false,
        }),
      );
    }
    const socket = await sockets.connect(room.owner);
    const sent = await server.api.post<
      Envelope<{ message: MessageData; generation: { id: string; messageId: string } }>
    >(
      `/api/chat/conversations/${room.conversation.id}/messages`,
      { content: 'What happened next?' },
      { token: room.owner.accessToken },
    );
    const { generation, message: question } = sent.body.data!;
    const { end } = await heard(socket, generation.id);
    expect(end[0]).toMatchObject({ status: 'SENT' });
    const answer = await storedMessage(
      room.owner.accessToken,
      room.conversation.id,
      generation.messageId,
    );
    expect(answer.status).toBe('SENT');
    const context = answer.metadata!.context!;
    // Nine messages in the branch, they cannot all fit: some were dropped…
    expect(context.dropped).toBeGreaterThan(0);
    expect(context.included + context.dropped).toBe(earlier.length + 1);
    // …and they were the oldest: what remained starts after them and runs to the question.
    const branchIds = [...earlier.map((m) => m.id), question.id];
    expect(branchIds.indexOf(context.oldestIncludedId)).toBe(context.dropped);
    expect(end[0]!.usage.promptTokens).toBeLessThanOrEqual(512);
  });

  it('titles a new conversation after its first exchange', async () => {
    const room = await buildRoom(server.api);
    // buildRoom titles it "Room"; make it a fresh 新对话 one.
    const fresh = await server.api.post<Envelope<{ id: string; title: string }>>(
      '/api/conversations',
      {},
      { token: room.owner.accessToken },
    );
    expect(fresh.body.data!.title).toBe('新对话');
    const socket = await sockets.connect(room.owner);
    await sendMessage(server.api, room.owner, fresh.body.data!.id, 'Tell me a story about a cat');
    const updated = await socket.next(
      'conversation:updated',
      (p) => (p as { conversationId: string }).conversationId === fresh.body.data!.id,
      20_000,
    );
    expect(updated).toMatchObject({ changes: ['title'], by: 'ai-assistant' });
    const view = await server.api.get<Envelope<{ title: string }>>(
      `/api/conversations/${fresh.body.data!.id}`,
      { token: room.owner.accessToken },
    );
    expect(view.body.data!.title).not.toBe('新对话');
    expect(view.body.data!.title.length).toBeGreaterThan(0);
    await settle(100);
  });

  it('serves answers at once from one model, two evaluating at a time (AI_LOCAL_PARALLEL) and the rest queued', async () => {
    const rooms = await Promise.all(Array.from({ length: 4 }, () => buildRoom(server.api)));
    const timeline = new Map<string, { first: number; last: number }>();
    const listeners = await Promise.all(
      rooms.map(async (room) => {
        const socket = await sockets.connect(room.owner);
        socket.socket.on('ai:stream:delta', ({ generationId }) => {
          const seen = timeline.get(generationId);
          if (seen) seen.last = Date.now();
          else timeline.set(generationId, { first: Date.now(), last: Date.now() });
        });
        return socket;
      }),
    );
    const sends = await Promise.all(
      rooms.map((room, i) =>
        server.api.post<Envelope<{ generation: { id: string; messageId: string } }>>(
          `/api/chat/conversations/${room.conversation.id}/messages`,
          { content: `Once upon a time, story ${i}` },
          { token: room.owner.accessToken },
        ),
      ),
    );
    const generations = sends.map((s) => s.body.data!.generation);
    const heardAll = await Promise.all(generations.map((g, i) => heard(listeners[i]!, g.id)));
    for (const [i, result] of heardAll.entries()) {
      expect(result.end[0]).toMatchObject({ status: 'SENT' });
      const stored = await storedMessage(
        rooms[i]!.owner.accessToken,
        rooms[i]!.conversation.id,
        generations[i]!.messageId,
      );
      expect(stored.content).toBe(result.deltas.map((d) => d.delta).join(''));
      expect(stored.content!.length).toBeGreaterThan(0);
    }
    // The third answer to start streaming waited for one of the first two to finish.
    const byStart = generations.map((g) => timeline.get(g.id)!).sort((a, b) => a.first - b.first);
    expect(byStart[2]!.first).toBeGreaterThanOrEqual(Math.min(byStart[0]!.last, byStart[1]!.last));
  });

  it('does not answer when the conversation has AI off, or the send says ai: false', async () => {
    const room = await buildRoom(server.api);
    const off = await sendMessage(server.api, room.owner, room.conversation.id, {
      content: 'quiet please',
      ai: false,
    });
    expect(off).toBeTruthy();
    await server.api.patch(
      `/api/conversations/${room.conversation.id}`,
      { settings: { aiEnabled: false } },
      { token: room.owner.accessToken },
    );
    const response = await server.api.post<Envelope<{ generation?: unknown }>>(
      `/api/chat/conversations/${room.conversation.id}/messages`,
      { content: 'still quiet' },
      { token: room.owner.accessToken },
    );
    expect(response.body.data!.generation).toBeUndefined();
  });
});
