// The typed client module (`parley/client`) against the real app: tokens renewed before they
// expire with the socket re-authenticated (it outlives its first token), an answer's SSE stream
// resumed with Last-Event-ID, a socket's answer resumed after a dropped connection, and a switch
// between an answer's versions seen by the other participant's socket.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ParleyClient,
  type AnswerEvent,
  type BranchSwitched,
  type StoredSession,
} from '../../src/client/index.js';
import { startFakeAiServer, type FakeAiServer } from '../support/ai.js';
import { startTestServer, type TestServer } from '../support/server.js';

const tag = () => Math.random().toString(36).slice(2, 8);
const credentials = () => ({
  email: `client-${tag()}@example.test`,
  password: 'correct-horse-battery',
  username: `client_${tag()}`,
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('client module: tokens', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ JWT_ACCESS_TTL: '4s' });
  });
  afterAll(() => server.close());

  it('renews the access token before it expires and keeps the socket past the first token’s end', async () => {
    const client = new ParleyClient(server.url);
    const sessions: Array<StoredSession | null> = [];
    client.tokens.onChange((s) => sessions.push(s));
    await client.register(credentials());
    const first = client.tokens.current!;
    const realtime = client.connect();
    await new Promise<void>((resolve) => realtime.socket.once('connect', resolve));
    let disconnected = false;
    realtime.socket.on('disconnect', () => (disconnected = true));

    await sleep(5_500);
    // Renewed at 3/4 of the 4 s lifetime, before the server would end the socket.
    expect(sessions.length).toBeGreaterThanOrEqual(2);
    expect(client.tokens.current!.accessToken).not.toBe(first.accessToken);
    expect(client.tokens.current!.refreshToken).not.toBe(first.refreshToken);
    expect(first.expiresAt).toBeLessThan(Date.now());
    expect(disconnected).toBe(false);
    expect(realtime.socket.connected).toBe(true);
    expect((await client.me()).id).toBe(first.user.id);
    realtime.close();
  }, 20_000);

  it('answers a 401 with one refresh and a retry; a dead session ends as null', async () => {
    const client = new ParleyClient(server.url);
    await client.register(credentials());
    const session = client.tokens.current!;
    // An access token long expired (as after a laptop slept) with a live refresh token: the
    // request is refused once, the session refreshed, and the request sent again.
    await sleep(4_200);
    const live = client.tokens.current!;
    client.tokens.restore({
      ...live,
      accessToken: session.accessToken,
      refreshAt: Date.now() + 60_000,
    });
    expect((await client.me()).id).toBe(session.user.id);
    expect(client.tokens.current!.accessToken).not.toBe(session.accessToken);
    expect(client.tokens.current!.refreshToken).not.toBe(live.refreshToken);

    await client.logout();
    expect(client.tokens.current).toBeNull();
    await expect(client.me()).rejects.toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
  }, 20_000);
});

describe('client module: answers', () => {
  let ai: FakeAiServer;
  const words = Array.from({ length: 30 }, (_, i) => `w${i} `);
  beforeAll(async () => {
    ai = await startFakeAiServer();
    ai.fake.fallback = { kind: 'stream', tokens: words, delayMs: 40 };
  });
  afterAll(() => ai.close());

  async function answer(client: ParleyClient) {
    const conversation = await client.createConversation({ title: 'Client test' });
    const sent = await client.sendMessage(conversation.id, { content: 'Tell me' });
    expect(sent.generation).toBeDefined();
    return { conversationId: conversation.id, generation: sent.generation! };
  }

  it('streams an answer over SSE and resumes it with Last-Event-ID: every event once, in order', async () => {
    const client = new ParleyClient(ai.url);
    await client.register(credentials());
    const { conversationId, generation } = await answer(client);
    const seen: number[] = [];
    let text = '';
    const { streamGeneration } = await import('../../src/client/index.js');
    for await (const event of streamGeneration(client, generation.id)) {
      seen.push(event.data.seq);
      if (event.event === 'delta') text += event.data.delta;
      if (seen.length === 3) break;
    }
    let ended = false;
    for await (const event of streamGeneration(client, generation.id, { afterSeq: seen.at(-1)! })) {
      seen.push(event.data.seq);
      if (event.event === 'delta') text += event.data.delta;
      if (event.event === 'end') ended = true;
    }
    expect(ended).toBe(true);
    expect(seen).toEqual(seen.map((_, i) => i));
    const stored = (await client.listMessages(conversationId)).messages.find(
      (m) => m.id === generation.messageId,
    )!;
    expect(text).toBe(words.join(''));
    expect(stored.content).toBe(text);
  });

  it('resumes a followed answer on its socket after the connection drops', async () => {
    const client = new ParleyClient(ai.url);
    await client.register(credentials());
    const realtime = client.connect();
    await new Promise<void>((resolve) => realtime.socket.once('connect', resolve));
    const events: AnswerEvent[] = [];
    const ended = new Promise<void>((resolve) =>
      realtime.onAnswer((event) => {
        events.push(event);
        if (event.type === 'end') resolve();
      }),
    );
    const { generation } = await answer(client);
    await expect.poll(() => events.filter((e) => e.type === 'delta').length).toBeGreaterThan(1);
    // The transport dies mid-answer; the client reconnects by itself and asks for what it missed.
    const reconnected = new Promise<void>((resolve) =>
      realtime.socket.io.once('reconnect', () => resolve()),
    );
    realtime.socket.io.engine.close();
    await reconnected;
    await ended;
    const ours = events.filter((e) => e.data.generationId === generation.id);
    expect(ours.map((e) => e.data.seq)).toEqual(ours.map((_, i) => i));
    const text = ours.map((e) => (e.type === 'delta' ? e.data.delta : '')).join('');
    expect(text).toBe(words.join(''));
    realtime.close();
  });

  it('switches between an answer’s versions: activateMessage, and branch:switched on the other’s socket', async () => {
    const alice = new ParleyClient(ai.url);
    const bob = new ParleyClient(ai.url);
    const [me, other] = await Promise.all([
      alice.register(credentials()),
      bob.register(credentials()),
    ]);
    const { id: conversationId } = await alice.createConversation({ participantIds: [other.id] });
    const sent = await alice.sendMessage(conversationId, { content: 'Tell me' });
    const firstId = sent.generation!.messageId;
    const status = async (messageId: string) =>
      (await alice.listMessages(conversationId)).messages.find((m) => m.id === messageId)?.status;
    await expect.poll(() => status(firstId), { timeout: 10_000 }).toBe('SENT');
    const secondId = (await alice.regenerate(firstId)).generation.messageId;
    // The new version is still being written: switching away from it is refused, nothing changed.
    await expect(alice.activateMessage(firstId)).rejects.toMatchObject({
      status: 409,
      code: 'CONFLICT',
    });
    await expect.poll(() => status(secondId), { timeout: 10_000 }).toBe('SENT');

    const realtime = bob.connect();
    await new Promise<void>((resolve) => realtime.socket.once('connect', resolve));
    const heard = new Promise<BranchSwitched>((resolve) =>
      realtime.socket.once('branch:switched', resolve),
    );
    const change = await alice.activateMessage(firstId);
    expect(change).toEqual({
      conversationId,
      messageId: firstId,
      active: [firstId],
      superseded: [secondId],
    });
    expect(await heard).toEqual({ ...change, by: me.id });
    const page = await bob.listMessages(conversationId, { branch: 'active' });
    expect(page.messages.map((m) => [m.id, m.versions])).toEqual([
      [sent.message.id, null],
      [firstId, { number: 1, count: 2, previousId: null, nextId: secondId }],
    ]);
    realtime.close();
  });
});
