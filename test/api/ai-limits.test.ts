// Issue 8, acceptance 5 and 6: the operator's AI settings are ceilings, and AI time is shared
// fairly: at most AI_MAX_PENDING_PER_USER answers running or waiting per user (more: 429 before
// anything is stored), and a free slot goes to the user who has waited without being served.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildRoom,
  createConversation,
  registerUser,
  type MessageData,
  type RegisteredUser,
} from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { startFakeAiServer, type FakeAiServer } from '../support/ai.js';
import { connectAs, request, settle } from '../support/sockets.js';

let ai: FakeAiServer;
beforeAll(async () => {
  ai = await startFakeAiServer({
    AI_CONCURRENCY: '1',
    AI_MAX_PENDING_PER_USER: '3',
    AI_MAX_OUTPUT_TOKENS: '500',
    AI_MODELS: 'fake-model,better-model',
  });
});
afterAll(async () => {
  await ai.close();
});

interface Stored extends MessageData {
  role: string;
  status: string;
  finishReason: string | null;
}

const messagesOf = async (user: RegisteredUser, conversationId: string) =>
  (
    await ai.server.api.get<Envelope<{ messages: Stored[] }>>(
      `/api/chat/conversations/${conversationId}/messages?limit=100`,
      { token: user.accessToken },
    )
  ).body.data!.messages;

const send = (user: RegisteredUser, conversationId: string, content: string) =>
  ai.server.api.post<
    Envelope<{ message: MessageData; generation?: { id: string; messageId: string } }>
  >(`/api/chat/conversations/${conversationId}/messages`, { content }, { token: user.accessToken });

async function waitAllDone(user: RegisteredUser, conversationId: string) {
  for (let i = 0; i < 300; i++) {
    if ((await messagesOf(user, conversationId)).every((m) => m.status !== 'SENDING')) return;
    await settle(50);
  }
  throw new Error('answers did not finish');
}

describe('the operator’s AI settings are ceilings', () => {
  it('refuses maxOutputTokens above AI_MAX_OUTPUT_TOKENS and a model outside AI_MODELS, naming the limit', async () => {
    const owner = await registerUser(ai.server.api);
    const tooLong = await ai.server.api.post(
      '/api/conversations',
      { settings: { maxOutputTokens: 501 } },
      { token: owner.accessToken },
    );
    expect(tooLong.status).toBe(400);
    expect(tooLong.body).toMatchObject({
      code: 'VALIDATION_ERROR',
      details: [{ path: 'settings.maxOutputTokens' }],
    });
    expect(tooLong.text).toContain('AI_MAX_OUTPUT_TOKENS');
    expect(tooLong.text).toContain('500');
    const otherModel = await ai.server.api.post(
      '/api/conversations',
      { settings: { model: 'gpt-9-ultra' } },
      { token: owner.accessToken },
    );
    expect(otherModel.status).toBe(400);
    expect(otherModel.text).toContain('AI_MODELS');
    expect(otherModel.text).toContain('better-model');

    const conversation = await createConversation(ai.server.api, owner, {
      settings: { model: 'better-model', maxOutputTokens: 500 },
    });
    const patched = await ai.server.api.patch(
      `/api/conversations/${conversation.id}`,
      { settings: { maxOutputTokens: 100_000 } },
      { token: owner.accessToken },
    );
    expect(patched.status).toBe(400);
    const patchedModel = await ai.server.api.patch(
      `/api/conversations/${conversation.id}`,
      { settings: { model: 'not-offered' } },
      { token: owner.accessToken },
    );
    expect(patchedModel.status).toBe(400);
    // Within the ceilings, the answer is asked for with them.
    const sent = await send(owner, conversation.id, 'hello');
    expect(sent.status).toBe(201);
    await waitAllDone(owner, conversation.id);
    expect(ai.fake.requests.at(-1)!.body).toMatchObject({ model: 'better-model', max_tokens: 500 });
  });

  it('the OpenAPI document says so', async () => {
    const doc = (await ai.server.api.get<Record<string, unknown>>('/openapi.json')).text;
    expect(doc).toContain('AI_MAX_OUTPUT_TOKENS');
    expect(doc).toContain('AI_MODELS');
  });

  it('regenerate and edit-and-resend in a conversation with AI off: 409, nothing started', async () => {
    const room = await buildRoom(ai.server.api);
    const cid = room.conversation.id;
    const asked = await send(room.owner, cid, 'question');
    await waitAllDone(room.owner, cid);
    await ai.server.api.patch(
      `/api/conversations/${cid}`,
      { settings: { aiEnabled: false } },
      { token: room.owner.accessToken },
    );
    const before = await messagesOf(room.owner, cid);
    const requestsBefore = ai.fake.requests.length;
    const regenerate = await ai.server.api.post(
      `/api/chat/messages/${asked.body.data!.generation!.messageId}/regenerate`,
      undefined,
      { token: room.owner.accessToken },
    );
    expect(regenerate.status).toBe(409);
    expect(regenerate.body).toMatchObject({ code: 'CONFLICT' });
    const edit = await ai.server.api.post(
      `/api/chat/messages/${asked.body.data!.message.id}/edit-branch`,
      { content: 'better question' },
      { token: room.owner.accessToken },
    );
    expect(edit.status).toBe(409);
    await settle(100);
    expect(await messagesOf(room.owner, cid)).toEqual(before);
    expect(ai.fake.requests.length).toBe(requestsBefore);
  });
});

describe('AI time is shared fairly', () => {
  it('caps a user at 3 answers running or waiting: the 4th is a 429 before anything is stored, also when sent at once', async () => {
    const room = await buildRoom(ai.server.api);
    const cid = room.conversation.id;
    ai.fake.fallback = { kind: 'stream', tokens: ['a', 'b', 'c', 'd'], delayMs: 60 };
    const socket = await connectAs(ai.server.url, room.owner.accessToken);
    try {
      // Six at once, over REST and the socket: exactly three are taken.
      const results = await Promise.all([
        ...Array.from({ length: 3 }, (_, i) => send(room.owner, cid, `rest ${i}`)),
        ...Array.from({ length: 3 }, (_, i) =>
          request(socket.socket, 'message:send', { conversationId: cid, content: `socket ${i}` }),
        ),
      ]);
      const statuses = results.map((r) =>
        'status' in r ? r.status : r.ok ? 201 : r.error.code === 'RATE_LIMITED' ? 429 : 0,
      );
      expect(statuses.filter((s) => s === 201)).toHaveLength(3);
      expect(statuses.filter((s) => s === 429)).toHaveLength(3);
      const refused = results.find((r) => 'status' in r && r.status === 429);
      if (refused && 'headers' in refused)
        expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      // Nothing of the refused ones was stored: three questions (and their answers) only.
      const stored = await messagesOf(room.owner, cid);
      expect(stored.filter((m) => m.role === 'USER')).toHaveLength(3);
      // Another participant is not held by the owner's cap.
      expect((await send(room.member, cid, 'mine')).status).toBe(201);
      await waitAllDone(room.owner, cid);
      // Once they are done, the owner may ask again.
      expect((await send(room.owner, cid, 'again')).status).toBe(201);
      await waitAllDone(room.owner, cid);
    } finally {
      socket.close();
      ai.fake.fallback = { kind: 'stream', tokens: ['Hello', ' there', '!'] };
    }
  });

  it('with one user’s queue full, another user’s answer starts next', async () => {
    const a = await registerUser(ai.server.api);
    const b = await registerUser(ai.server.api);
    const conversation = await createConversation(ai.server.api, a, {
      participantIds: [b.user.id],
    });
    // a0 runs long enough (2 s) for the other three to be waiting when it ends.
    ai.fake.script.push({ kind: 'stream', tokens: Array(20).fill('x'), delayMs: 100 });
    ai.fake.fallback = { kind: 'stream', tokens: ['x', 'y', 'z', 'w'], delayMs: 20 };
    const before = ai.fake.requests.length;
    try {
      for (let i = 0; i < 3; i++)
        expect((await send(a, conversation.id, `a${i}`)).status).toBe(201);
      expect((await send(b, conversation.id, 'b0')).status).toBe(201);
      expect(ai.fake.requests.slice(before).map((r) => r.completed)).toEqual([false]);
      await waitAllDone(a, conversation.id);
      // One at a time (AI_CONCURRENCY=1): a0 was running; b0 went before a1 and a2.
      const order = ai.fake.requests.slice(before).map((r) => r.body.messages.at(-1)!.content);
      expect(order).toEqual(['a0', 'b0', 'a1', 'a2']);
    } finally {
      ai.fake.fallback = { kind: 'stream', tokens: ['Hello', ' there', '!'] };
    }
  });

  it('an answer stopped while it waits for its turn ends at once, stopped, and frees its place', async () => {
    const room = await buildRoom(ai.server.api);
    const cid = room.conversation.id;
    ai.fake.fallback = { kind: 'stream', tokens: ['1', '2', '3', '4', '5'], delayMs: 80 };
    try {
      const first = await send(room.owner, cid, 'first');
      const second = await send(room.owner, cid, 'second');
      const waiting = second.body.data!.generation!;
      const stopped = await ai.server.api.post<Envelope<{ stopped: boolean }>>(
        `/api/chat/generations/${waiting.id}/stop`,
        undefined,
        { token: room.member.accessToken },
      );
      expect(stopped.body.data!.stopped).toBe(true);
      await waitAllDone(room.owner, cid);
      const stored = await messagesOf(room.owner, cid);
      expect(stored.find((m) => m.id === waiting.messageId)).toMatchObject({
        status: 'SENT',
        finishReason: 'stopped',
        content: '',
      });
      expect(stored.find((m) => m.id === first.body.data!.generation!.messageId)).toMatchObject({
        status: 'SENT',
        finishReason: 'stop',
      });
      // Never asked upstream.
      expect(ai.fake.requests.some((r) => r.body.messages.at(-1)!.content === 'second')).toBe(
        false,
      );
    } finally {
      ai.fake.fallback = { kind: 'stream', tokens: ['Hello', ' there', '!'] };
    }
  });

  it('an answer waiting for its turn in a conversation that is deleted never reaches the upstream', async () => {
    const busy = await buildRoom(ai.server.api);
    const doomed = await buildRoom(ai.server.api);
    ai.fake.script.push({ kind: 'stream', tokens: Array(10).fill('x'), delayMs: 100 });
    ai.fake.fallback = { kind: 'stream', tokens: ['late'], delayMs: 10 };
    try {
      expect((await send(busy.owner, busy.conversation.id, 'keep the slot busy')).status).toBe(201);
      const waiting = await send(doomed.owner, doomed.conversation.id, 'never asked');
      expect(waiting.status).toBe(201);
      const deleted = await ai.server.api.delete(`/api/conversations/${doomed.conversation.id}`, {
        token: doomed.owner.accessToken,
      });
      expect(deleted.status).toBe(200);
      await waitAllDone(busy.owner, busy.conversation.id);
      await settle(300);
      expect(ai.fake.requests.some((r) => r.body.messages.at(-1)!.content === 'never asked')).toBe(
        false,
      );
      // Its place was given back: the owner may have three answers again.
      const fresh = await createConversation(ai.server.api, doomed.owner);
      const again = await Promise.all(
        [0, 1, 2].map((i) => send(doomed.owner, fresh.id, `again ${i}`)),
      );
      expect(again.map((r) => r.status)).toEqual([201, 201, 201]);
      await waitAllDone(doomed.owner, fresh.id);
    } finally {
      ai.fake.fallback = { kind: 'stream', tokens: ['Hello', ' there', '!'] };
    }
  });
});
