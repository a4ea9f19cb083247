// Issue 5, acceptance 2 and 4: the openai provider (the real SDK) against a server speaking the
// chat-completions SSE wire format: usage, a mid-stream failure, 429 retried, a hung upstream,
// and a stop by another participant that closes the upstream connection.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildRoom, type MessageData, type RegisteredUser } from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { sendForAnswer, startFakeAiServer } from '../support/ai.js';
import type { FakeOpenAi } from '../support/fake-openai.js';
import type { TestServer } from '../support/server.js';
import { request, settle, socketSuite, type RecordingSocket } from '../support/sockets.js';

let fake: FakeOpenAi;
let server: TestServer;
const sockets = socketSuite({ beforeAll, afterEach, afterAll }, async () => {
  const started = await startFakeAiServer({
    AI_TIMEOUT: '1500ms',
    AI_MAX_RETRIES: '2',
    AI_MODELS: 'fake-model,other-model',
  });
  ({ fake, server } = started);
  return started;
});
afterEach(() => {
  fake.script.splice(0);
});

interface Stored extends MessageData {
  status: string;
  usage: { promptTokens: number; completionTokens: number; totalTokens: number } | null;
  finishReason: string | null;
  model: string | null;
}

const ask = async (user: RegisteredUser, conversationId: string, content = 'hi') =>
  (await sendForAnswer(server, user, conversationId, content)).generation;

async function stored(user: RegisteredUser, conversationId: string, id: string): Promise<Stored> {
  const page = await server.api.get<Envelope<{ messages: Stored[] }>>(
    `/api/chat/conversations/${conversationId}/messages`,
    {
      token: user.accessToken,
    },
  );
  return page.body.data!.messages.find((m) => m.id === id)!;
}

const endOf = (socket: RecordingSocket, generationId: string, timeoutMs = 8_000) =>
  socket.next(
    'ai:stream:end',
    (p) => (p as { generationId: string }).generationId === generationId,
    timeoutMs,
  ) as Promise<{
    status: string;
    finishReason: string;
    usage: Stored['usage'];
    seq: number;
  }>;

const deltasOf = (socket: RecordingSocket, generationId: string) =>
  (
    socket.of('ai:stream:delta') as Array<{ generationId: string; seq: number; delta: string }>
  ).filter((d) => d.generationId === generationId);

describe('openai provider against the chat-completions wire format', () => {
  it('streams an answer and stores it with the upstream’s usage, asking for usage in the stream', async () => {
    const room = await buildRoom(server.api);
    const socket = await sockets.connect(room.member);
    fake.script.push({
      kind: 'stream',
      tokens: ['The', ' answer', ' is', ' 42', '.'],
      usage: { prompt: 20, completion: 5 },
    });
    const generation = await ask(room.owner, room.conversation.id, 'What is the answer?');
    const end = await endOf(socket, generation.id);
    expect(end).toMatchObject({
      status: 'SENT',
      finishReason: 'stop',
      usage: { promptTokens: 20, completionTokens: 5, totalTokens: 25 },
    });
    const message = await stored(room.owner, room.conversation.id, generation.messageId);
    expect(message).toMatchObject({
      content: 'The answer is 42.',
      status: 'SENT',
      model: 'fake-model',
      usage: { totalTokens: 25 },
    });
    expect(
      deltasOf(socket, generation.id)
        .map((d) => d.delta)
        .join(''),
    ).toBe('The answer is 42.');
    const sentToUpstream = fake.requests.at(-1)!.body;
    expect(sentToUpstream).toMatchObject({
      model: 'fake-model',
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(sentToUpstream.messages.at(-1)).toEqual({
      role: 'user',
      content: 'What is the answer?',
    });
  });

  it('fails cleanly when the stream breaks off midway: FAILED, ai:error, the partial text kept', async () => {
    const room = await buildRoom(server.api);
    const socket = await sockets.connect(room.member);
    fake.script.push({ kind: 'fail-midway', tokens: ['Partial', ' answer'], delayMs: 5 });
    const generation = await ask(room.owner, room.conversation.id);
    const error = (await socket.next(
      'ai:error',
      (p) => (p as { generationId: string }).generationId === generation.id,
      8_000,
    )) as { error: string };
    expect(error.error).toMatch(/broke off|failed/i);
    expect(await endOf(socket, generation.id)).toMatchObject({
      status: 'FAILED',
      finishReason: 'error',
    });
    const message = await stored(room.owner, room.conversation.id, generation.messageId);
    expect(message).toMatchObject({ status: 'FAILED', content: 'Partial answer' });
    expect(
      deltasOf(socket, generation.id)
        .map((d) => d.delta)
        .join(''),
    ).toBe('Partial answer');
    // No retry once text had been streamed.
    expect(fake.requests.filter((r) => r.body.messages.at(-1)?.content === 'hi')).toHaveLength(1);
  });

  it('retries a 429 that comes before the first token, then answers', async () => {
    const room = await buildRoom(server.api);
    const socket = await sockets.connect(room.member);
    const before = fake.requests.length;
    fake.script.push(
      { kind: 'status', status: 429, retryAfterMs: 20 },
      { kind: 'stream', tokens: ['ok'] },
    );
    const generation = await ask(room.owner, room.conversation.id);
    expect(await endOf(socket, generation.id)).toMatchObject({ status: 'SENT' });
    expect(fake.requests.length - before).toBe(2);
    expect((await stored(room.owner, room.conversation.id, generation.messageId)).content).toBe(
      'ok',
    );
  });

  it('times out cleanly on a hung upstream: FAILED with a message saying so', async () => {
    const room = await buildRoom(server.api);
    const socket = await sockets.connect(room.member);
    fake.script.push({ kind: 'hang' });
    const started = Date.now();
    const generation = await ask(room.owner, room.conversation.id);
    const error = (await socket.next(
      'ai:error',
      (p) => (p as { generationId: string }).generationId === generation.id,
      8_000,
    )) as { error: string; code: string };
    expect(error).toMatchObject({ code: 'timeout' });
    expect(error.error).toMatch(/did not answer within 1\.5 s/);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await stored(room.owner, room.conversation.id, generation.messageId)).status).toBe(
      'FAILED',
    );
    await settle(100);
    expect(fake.requests.at(-1)!.clientHungUp).toBe(true); // we closed the connection, not leaked it
  });

  it('says to check the API key when the upstream answers 401', async () => {
    const room = await buildRoom(server.api);
    const socket = await sockets.connect(room.member);
    fake.script.push({ kind: 'status', status: 401 });
    const generation = await ask(room.owner, room.conversation.id);
    const error = (await socket.next(
      'ai:error',
      (p) => (p as { generationId: string }).generationId === generation.id,
    )) as { error: string; code: string };
    expect(error).toMatchObject({ code: 'auth' });
    expect(error.error).toContain('OPENAI_API_KEY');
  });

  it('stops when another participant says so: finishReason "stopped", partial text kept, no more deltas, upstream closed', async () => {
    const room = await buildRoom(server.api);
    const [ownerSocket, memberSocket] = await Promise.all([
      sockets.connect(room.owner),
      sockets.connect(room.member),
    ]);
    fake.script.push({
      kind: 'stream',
      tokens: Array.from({ length: 200 }, (_, i) => ` w${i}`),
      delayMs: 20,
    });
    const generation = await ask(room.owner, room.conversation.id, 'Write a lot');
    // Let a few deltas through, then the other participant presses stop.
    await memberSocket.next('ai:stream:delta', (p) => (p as { seq: number }).seq >= 3, 5_000);
    const stop = await request(memberSocket.socket, 'generation:stop', {
      generationId: generation.id,
    });
    expect(stop).toMatchObject({ ok: true, data: { stopped: true } });
    const end = await endOf(ownerSocket, generation.id);
    expect(end).toMatchObject({ status: 'SENT', finishReason: 'stopped' });
    await settle(300);
    const deltas = deltasOf(ownerSocket, generation.id);
    expect(Math.max(...deltas.map((d) => d.seq))).toBeLessThan(end.seq);
    const message = await stored(room.owner, room.conversation.id, generation.messageId);
    expect(message).toMatchObject({ status: 'SENT', finishReason: 'stopped' });
    expect(message.content).toBe(deltas.map((d) => d.delta).join(''));
    expect(message.content!.length).toBeGreaterThan(0);
    expect(message.content!.split(' w').length - 1).toBeLessThan(200);
    const upstream = fake.requests.find((r) => r.body.messages.at(-1)?.content === 'Write a lot')!;
    expect(upstream.clientHungUp).toBe(true);
    // Stopping again, or over HTTP, says it was not running.
    const again = await server.api.post(`/api/chat/generations/${generation.id}/stop`, undefined, {
      token: room.owner.accessToken,
    });
    expect(again.body).toMatchObject({ data: { stopped: false } });
  });
});

describe('coalescing', () => {
  /** Records each delta of one generation with when it arrived. */
  function timedDeltas(socket: RecordingSocket) {
    const arrivals: Array<{ at: number; seq: number; delta: string; generationId: string }> = [];
    socket.socket.on('ai:stream:delta', (p) => arrivals.push({ at: Date.now(), ...p }));
    return arrivals;
  }

  it('sends the first token at once, then at most one delta per 30 ms, each with only new text and worth its overhead', async () => {
    const room = await buildRoom(server.api);
    const socket = await sockets.connect(room.member);
    const arrivals = timedDeltas(socket);
    // 400 tokens of ~6 bytes, one every 2 ms: ~2,400 bytes in under a second.
    const tokens = Array.from({ length: 400 }, (_, i) => ` w${String(i).padStart(3, '0')}`);
    fake.script.push({ kind: 'stream', tokens, delayMs: 2 });
    const generation = await ask(room.owner, room.conversation.id, 'Count');
    await endOf(socket, generation.id);
    const mine = arrivals.filter((d) => d.generationId === generation.id);
    expect(mine[0]!.delta).toBe(tokens[0]); // not held back: time to first token
    expect(mine.map((d) => d.seq)).toEqual(mine.map((_, i) => i + 1));
    expect(mine.map((d) => d.delta).join('')).toBe(tokens.join(''));
    // At most one delta per 30 ms after the first (counted over the span, so a stall of the
    // test's own event loop that delivers two at once does not make it flaky).
    const span = mine.at(-1)!.at - mine[1]!.at;
    expect(mine.length - 2).toBeLessThanOrEqual(Math.floor(span / 30) + 1);
    // Bytes grow with the text, not the token count: a handful of deltas, not 400.
    const bytes = Buffer.byteLength(tokens.join(''));
    expect(mine.length).toBeLessThanOrEqual(Math.ceil(bytes / 480) + 3);
  });

  it('does not hold a slow model’s text back for long: a delta at least every ~400 ms', async () => {
    const room = await buildRoom(server.api);
    const socket = await sockets.connect(room.member);
    const arrivals = timedDeltas(socket);
    const tokens = Array.from({ length: 10 }, (_, i) => ` slow${i}`);
    fake.script.push({ kind: 'stream', tokens, delayMs: 150 });
    const generation = await ask(room.owner, room.conversation.id, 'Slowly');
    await endOf(socket, generation.id);
    const mine = arrivals.filter((d) => d.generationId === generation.id);
    expect(mine.map((d) => d.delta).join('')).toBe(tokens.join(''));
    // 1.5 s of tokens: the first at once, then one about every 400 ms, never all at the end.
    expect(mine.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < mine.length; i++) {
      expect(mine[i]!.at - mine[i - 1]!.at).toBeLessThan(900); // 400 ms + a token's 150 + slack
    }
  });
});

describe('per-conversation settings and metrics', () => {
  it('sends the conversation’s model, system prompt, temperature and output limit upstream', async () => {
    const room = await buildRoom(server.api);
    const socket = await sockets.connect(room.owner);
    const patched = await server.api.patch(
      `/api/conversations/${room.conversation.id}`,
      {
        settings: {
          model: 'other-model',
          systemPrompt: 'You answer in one word.',
          temperature: 0.3,
          maxOutputTokens: 77,
        },
      },
      { token: room.owner.accessToken },
    );
    expect(patched.status).toBe(200);
    fake.script.push({ kind: 'stream', tokens: ['Yes'] });
    const generation = await ask(room.owner, room.conversation.id, 'Well?');
    await endOf(socket, generation.id);
    const body = fake.requests.at(-1)!.body;
    expect(body).toMatchObject({ model: 'other-model', temperature: 0.3, max_tokens: 77 });
    expect(body.messages[0]).toEqual({ role: 'system', content: 'You answer in one word.' });
    expect(body.messages.at(-1)).toEqual({ role: 'user', content: 'Well?' });
    const message = await stored(room.owner, room.conversation.id, generation.messageId);
    expect(message).toMatchObject({ model: 'other-model', content: 'Yes', status: 'SENT' });
  });

  it('counts generations by status, time to first token, tokens out and active generations', async () => {
    const room = await buildRoom(server.api);
    const socket = await sockets.connect(room.owner);
    const metric = async (pattern: RegExp) => {
      const text = (await server.api.get<string>('/metrics')).body;
      return Number(pattern.exec(text)?.[1] ?? 0);
    };
    const completed = /ai_generations_total\{provider="openai",status="completed"\} (\d+)/;
    const failed = /ai_generations_total\{provider="openai",status="failed"\} (\d+)/;
    const tokensOut = /ai_tokens_out_total\{provider="openai"\} (\d+)/;
    const firstTokens = /ai_time_to_first_token_seconds_count\{provider="openai"\} (\d+)/;
    const before = {
      completed: await metric(completed),
      failed: await metric(failed),
      tokensOut: await metric(tokensOut),
      firstTokens: await metric(firstTokens),
    };

    fake.script.push({
      kind: 'stream',
      tokens: ['a', 'b', 'c'],
      usage: { prompt: 5, completion: 3 },
    });
    await endOf(socket, (await ask(room.owner, room.conversation.id, 'one')).id);
    fake.script.push({ kind: 'status', status: 401 });
    await endOf(socket, (await ask(room.owner, room.conversation.id, 'two')).id);

    expect(await metric(completed)).toBe(before.completed + 1);
    expect(await metric(failed)).toBe(before.failed + 1);
    expect(await metric(tokensOut)).toBe(before.tokensOut + 3);
    expect(await metric(firstTokens)).toBe(before.firstTokens + 1);
    expect(await metric(/ai_active_generations (\d+)/)).toBe(0);

    // While an answer runs, it is counted as active.
    fake.script.push({ kind: 'stream', tokens: ['x', 'y', 'z'], delayMs: 300 });
    const running = await ask(room.owner, room.conversation.id, 'three');
    await socket.next(
      'ai:stream:delta',
      (p) => (p as { generationId: string }).generationId === running.id,
    );
    expect(await metric(/ai_active_generations (\d+)/)).toBe(1);
    await endOf(socket, running.id);
  });
});
