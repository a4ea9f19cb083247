// The typed client module (`parley/client`) against the real app: tokens renewed before they
// expire with the socket re-authenticated (it outlives its first token), two tabs of one session
// renewing in turn and at one moment, a socket coming back after a refused handshake and backing
// off while refused, an answer's SSE stream resumed with Last-Event-ID, a socket's answer resumed
// after a dropped connection, mid-answer with live events flowing, or before the socket connected,
// a failed answer's end, the account export, a switch between an answer's versions seen by the
// other participant's socket, and a refresh that gets no answer in time.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ParleyClient,
  RestClient,
  SocketCallError,
  StreamGarbled,
  parseSse,
  streamGeneration,
  type AnswerEvent,
  type BranchSwitched,
  type LockRunner,
  type Realtime,
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
/** Every answer event the socket passes on, and the first end. */
function recordAnswers(realtime: Realtime) {
  const events: AnswerEvent[] = [];
  const ended = new Promise<void>((resolve) =>
    realtime.onAnswer((event) => {
      events.push(event);
      if (event.type === 'end') resolve();
    }),
  );
  return { events, ended };
}

/** An origin no request reaches: the tests that stub fetch answer for it alone. */
const FAKE_ORIGIN = 'http://parley.invalid';
const urlOf = (input: Parameters<typeof fetch>[0]) =>
  typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
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
    // Renewed at 3/4 of the 4 s lifetime (counted as 3 s: exp is whole seconds from the signing),
    // before the server would end the socket.
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

  it('comes back by itself after a reconnect whose handshake is refused (its token dead)', async () => {
    const account = credentials();
    const client = new ParleyClient(server.url);
    await client.register(account);
    const realtime = client.connect();
    await new Promise<void>((resolve) => realtime.socket.once('connect', resolve));
    // A token the server refuses (its session ended), held as if it were the live one: as a
    // token that expired while the laptop slept. The next handshake presents it.
    const other = new ParleyClient(server.url);
    await other.login({ email: account.email, password: account.password });
    const dead = other.tokens.current!.accessToken;
    await other.logout();
    client.tokens.restore({
      ...client.tokens.current!,
      accessToken: dead,
      refreshAt: Date.now() + 60_000,
    });
    const refused = new Promise<Error>((resolve) => realtime.socket.once('connect_error', resolve));
    const back = new Promise<void>((resolve) =>
      realtime.socket.on('connect', () => {
        if (client.tokens.current?.accessToken !== dead) resolve();
      }),
    );
    realtime.socket.io.engine.close();
    expect((await refused).message).toBe('Authentication failed');
    // socket.io gives up after a refused handshake; the client renews and connects again.
    await back;
    expect(realtime.socket.connected).toBe(true);
    expect(client.tokens.current!.accessToken).not.toBe(dead);
    realtime.close();
  }, 20_000);

  it('exports the account as the streamed JSON document', async () => {
    const client = new ParleyClient(server.url);
    const user = await client.register(credentials());
    await client.createConversation({ title: 'Kept' });
    const response = await client.exportAccount();
    expect(response.headers.get('content-type')).toMatch(/json/);
    const body = (await response.json()) as {
      format: string;
      user: { id: string };
      conversations: Array<{ title: string }>;
    };
    expect(body.format).toBe('parley-export/1');
    expect(body.user.id).toBe(user.id);
    expect(body.conversations.map((c) => c.title)).toEqual(['Kept']);
    await client.logout();
    await expect(client.exportAccount()).rejects.toMatchObject({ status: 401 });
  });
});

describe('client module: two tabs of one session', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ JWT_ACCESS_TTL: '2s' });
  });
  afterAll(() => server.close());

  /** Tabs of one browser: one localStorage, its `storage` events (a moment late), one lock. */
  function browser() {
    let saved: string | null = null;
    let queue: Promise<unknown> = Promise.resolve();
    const lock: LockRunner = (_name, task) => {
      const run = queue.then(task);
      queue = run.catch(() => undefined);
      return run;
    };
    const tabs: ParleyClient[] = [];
    const openTab = () => {
      const tab: ParleyClient = new ParleyClient(server.url, {
        lock,
        store: {
          load: () => (saved ? (JSON.parse(saved) as StoredSession) : null),
          save: (session) => {
            saved = session ? JSON.stringify(session) : null;
            const value = saved;
            for (const other of tabs)
              if (other !== tab)
                setTimeout(
                  () => other.tokens.sync(value ? (JSON.parse(value) as StoredSession) : null),
                  50,
                );
          },
        },
      });
      tabs.push(tab);
      return tab;
    };
    return { openTab, saved: () => saved };
  }

  it('renews in turn: the session survives several renewals', async () => {
    const { openTab, saved } = browser();
    const a = openTab();
    const b = openTab();
    await a.register(credentials());
    // Tab B opens on the kept session (as web/main.ts does at load): both hold one refresh token,
    // and would renew at one moment without the lock.
    expect(saved()).toBe(JSON.stringify(a.tokens.current));
    b.tokens.restore(a.tokens.current!);
    const ended: string[] = [];
    const refreshTokens = new Set<string>();
    for (const [name, tab] of [
      ['a', a],
      ['b', b],
    ] as const)
      tab.tokens.onChange((session) => {
        if (!session) ended.push(name);
        else refreshTokens.add(session.refreshToken);
      });
    await sleep(6_000);
    expect(ended).toEqual([]);
    // About one renewal per 0.75 s (at 3/4 of the 2 s lifetime, counted a second short), by one
    // tab or the other.
    expect(refreshTokens.size).toBeGreaterThanOrEqual(3);
    expect((await a.me()).id).toBe((await b.me()).id);
    const sessions = await a.sessions();
    expect(sessions.filter((s) => s.current)).toHaveLength(1);
  }, 20_000);

  it('renews once when both tabs ask at one moment: the second takes the first one’s tokens', async () => {
    const { openTab, saved } = browser();
    const a = openTab();
    const b = openTab();
    await a.register(credentials());
    b.tokens.restore(a.tokens.current!);
    const first = a.tokens.current!;
    const ended: string[] = [];
    a.tokens.onChange((session) => session ?? ended.push('a'));
    b.tokens.onChange((session) => session ?? ended.push('b'));
    // Without the lock both would present one refresh token, and the second would revoke the
    // session (a reused refresh token).
    const [fromA, fromB] = await Promise.all([a.tokens.refresh(), b.tokens.refresh()]);
    expect(ended).toEqual([]);
    expect(fromA!.refreshToken).not.toBe(first.refreshToken);
    expect(fromB!.refreshToken).toBe(fromA!.refreshToken);
    expect(fromB!.accessToken).toBe(fromA!.accessToken);
    expect((JSON.parse(saved()!) as StoredSession).refreshToken).toBe(fromA!.refreshToken);
    expect((await a.me()).id).toBe((await b.me()).id);
    expect(a.tokens.current).not.toBeNull();
    expect(b.tokens.current).not.toBeNull();
  });
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
    for await (const event of streamGeneration(client, generation.id)) {
      seen.push(event.data.seq);
      if (event.type === 'delta') text += event.data.delta;
      if (seen.length === 3) break;
    }
    let ended = false;
    for await (const event of streamGeneration(client, generation.id, { afterSeq: seen.at(-1)! })) {
      seen.push(event.data.seq);
      if (event.type === 'delta') text += event.data.delta;
      if (event.type === 'end') ended = true;
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
    const { events, ended } = recordAnswers(realtime);
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

  it('resumes an answer from its first event while live events flow: the text is whole', async () => {
    // Long tokens: deltas go out per ~480 bytes (generation-runner.ts), so this answer has many.
    const many = Array.from({ length: 60 }, (_, i) => `${`t${i} `.padEnd(150, '.')} `);
    ai.fake.script.push({ kind: 'stream', tokens: many, delayMs: 10 });
    const client = new ParleyClient(ai.url);
    await client.register(credentials());
    const realtime = client.connect();
    await new Promise<void>((resolve) => realtime.socket.once('connect', resolve));
    let text = '';
    const deltas: Extract<AnswerEvent, { type: 'delta' }>[] = [];
    const ended = new Promise<void>((resolve) =>
      realtime.onAnswer((event) => {
        if (event.type === 'delta') {
          text += event.data.delta;
          deltas.push(event);
        }
        if (event.type === 'end') resolve();
      }),
    );
    const { conversationId, generation } = await answer(client);
    // Coming back to the conversation mid-answer, twice: the text starts from nothing and the
    // answer is replayed from its first event (as web/chat.ts does), while a live delta sent
    // before the server took the resume is still on its way (sent here by hand, so the race is
    // not left to chance).
    for (const after of [3, 8]) {
      await expect
        .poll(() => deltas.length, { interval: 5, timeout: 5_000 })
        .toBeGreaterThanOrEqual(after);
      const live = deltas.at(-1)!.data;
      ai.server.gateway.io.to(realtime.socket.id!).emit('ai:stream:delta', live);
      text = '';
      await realtime.resume(generation.id, -1);
    }
    await ended;
    const stored = (await client.listMessages(conversationId)).messages.find(
      (m) => m.id === generation.messageId,
    )!;
    expect(stored.content).toBe(many.join(''));
    expect(text).toBe(stored.content);
    expect(realtime.follows(generation.id)).toBe(false);
    realtime.close();
  });

  it('resumes before the socket connects: the ack tells a finished answer, a refusal rejects', async () => {
    const client = new ParleyClient(ai.url);
    await client.register(credentials());
    const { conversationId, generation } = await answer(client);
    await expect
      .poll(
        async () =>
          (await client.listMessages(conversationId)).messages.find(
            (m) => m.id === generation.messageId,
          )?.status,
        { timeout: 10_000 },
      )
      .toBe('SENT');
    // As on a first load, the page's fetch done before the handshake: the resumes wait for it.
    const realtime = client.connect();
    expect(realtime.socket.connected).toBe(false);
    const finished = realtime.resume(generation.id, -1);
    const missing = realtime.resume(crypto.randomUUID(), -1);
    expect((await finished).finished).toBe(true);
    await expect(missing).rejects.toBeInstanceOf(SocketCallError);
    expect(realtime.follows(generation.id)).toBe(false);
    realtime.close();
  });

  it('resumes a streaming answer before the socket connects: its events, then the end', async () => {
    // ~4 s of answer: still being written when the handshake is done, however loaded the machine.
    const slow = Array.from({ length: 20 }, (_, i) => `s${i} `);
    ai.fake.script.push({ kind: 'stream', tokens: slow, delayMs: 200 });
    const client = new ParleyClient(ai.url);
    await client.register(credentials());
    const { generation } = await answer(client);
    const realtime = client.connect();
    expect(realtime.socket.connected).toBe(false);
    const { events, ended } = recordAnswers(realtime);
    const ack = await realtime.resume(generation.id, -1);
    expect(ack.finished).toBe(false);
    await ended;
    const ours = events.filter((e) => e.data.generationId === generation.id);
    expect(ours.map((e) => e.data.seq)).toEqual(ours.map((_, i) => i));
    expect(ours.map((e) => (e.type === 'delta' ? e.data.delta : '')).join('')).toBe(slow.join(''));
    realtime.close();
  });

  it('ends a failed answer: error, then end with status FAILED, and it is followed no more', async () => {
    ai.fake.script.push({ kind: 'fail-midway', tokens: ['Half ', 'an '], delayMs: 5 });
    const client = new ParleyClient(ai.url);
    await client.register(credentials());
    const realtime = client.connect();
    await new Promise<void>((resolve) => realtime.socket.once('connect', resolve));
    const { events, ended } = recordAnswers(realtime);
    const { generation } = await answer(client);
    await ended;
    const ours = events.filter((e) => e.data.generationId === generation.id);
    const end = ours.at(-1)!;
    expect(ours.slice(-2).map((e) => e.type)).toEqual(['error', 'end']);
    expect(end.type === 'end' && end.data.status).toBe('FAILED');
    expect(realtime.follows(generation.id)).toBe(false);
    // Resumed from the start, it is told the same way once more, with nothing left followed.
    const replayed: AnswerEvent[] = [];
    realtime.onAnswer((event) => replayed.push(event));
    await realtime.resume(generation.id, -1);
    expect(replayed.slice(-2).map((e) => e.type)).toEqual(['error', 'end']);
    expect(realtime.follows(generation.id)).toBe(false);
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

describe('client module: streams and calls', () => {
  const encoder = new TextEncoder();
  const session = (accessToken: string, refreshToken: string): StoredSession => ({
    user: { id: 'u1' } as StoredSession['user'],
    accessToken,
    refreshToken,
    expiresAt: Date.now() + 60_000,
    refreshAt: Date.now() + 45_000,
  });

  it('cancels the SSE body when its consumer stops early', async () => {
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode('id: 0\nevent: start\ndata: {}\n\nid: 1\n'));
      },
      cancel() {
        cancelled = true;
      },
    });
    for await (const event of parseSse(body)) {
      expect(event).toEqual({ id: '0', event: 'start', data: '{}' });
      break;
    }
    expect(cancelled).toBe(true);
  });

  it('ends an answer stream whose event is not JSON instead of asking again', async () => {
    let requests = 0;
    const rest = new RestClient(FAKE_ORIGIN);
    rest.fetch = () => {
      requests += 1;
      return Promise.resolve(
        new Response('id: 0\nevent: start\ndata: {not json\n\n', {
          headers: { 'content-type': 'text/event-stream' },
        }),
      );
    };
    const events = streamGeneration(rest, 'g1', { retryMs: 1 });
    await expect(events.next()).rejects.toBeInstanceOf(StreamGarbled);
    expect(requests).toBe(1);
  });

  it('sends a request refused for a token renewed meanwhile again, without another refresh', async () => {
    const rest = new RestClient(FAKE_ORIGIN);
    rest.tokens.restore(session('old', 'r1'));
    const seen: string[] = [];
    const realFetch = globalThis.fetch.bind(globalThis);
    const fetch = vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
      const url = urlOf(input);
      // Only this test's made-up origin: the file's earlier clients still reach the real server.
      if (!url.startsWith(FAKE_ORIGIN)) return realFetch(input, init);
      seen.push(`${url} ${new Headers(init?.headers).get('authorization')}`);
      // The token is renewed (another caller's refresh) while this request is out.
      if (seen.length === 1) rest.tokens.restore(session('new', 'r2'));
      return Promise.resolve(
        seen.length === 1
          ? Response.json(
              { success: false, error: 'expired', code: 'UNAUTHORIZED' },
              { status: 401 },
            )
          : Response.json({ success: true, data: { id: 'u1' } }),
      );
    });
    try {
      await expect(rest.me()).resolves.toEqual({ id: 'u1' });
    } finally {
      fetch.mockRestore();
      rest.tokens.clear();
    }
    expect(seen).toEqual([
      `${FAKE_ORIGIN}/api/auth/me Bearer old`,
      `${FAKE_ORIGIN}/api/auth/me Bearer new`,
    ]);
  });

  it('keeps a restored session’s jitter in memory: the store keeps its refresh time', () => {
    const saves: Array<StoredSession | null> = [];
    const rest = new RestClient(FAKE_ORIGIN, {
      store: { load: () => null, save: (s) => saves.push(s) },
    });
    const kept = session('a1', 'r1');
    rest.tokens.restore(kept);
    expect(rest.tokens.current!.refreshAt).toBeLessThanOrEqual(kept.refreshAt);
    expect(saves).toEqual([]);
    rest.tokens.clear();
  });

  it('counts a refresh without an answer in time as failed: the session stays, the lock is let go', async () => {
    let queue: Promise<unknown> = Promise.resolve();
    const lock: LockRunner = (_name, task) => {
      const run = queue.then(task);
      queue = run.catch(() => undefined);
      return run;
    };
    const tabs = [1, 2].map(() => new RestClient(FAKE_ORIGIN, { lock, refreshTimeoutMs: 100 }));
    tabs.forEach((tab, i) => tab.tokens.restore(session(`a${i}`, `r${i}`)));
    // A server that takes the request and never answers. Only this test's made-up origin: the
    // file's earlier clients (their renewal timers) still reach the real server meanwhile.
    const realFetch = globalThis.fetch.bind(globalThis);
    const hung = (input: Parameters<typeof fetch>[0]) => urlOf(input).startsWith(FAKE_ORIGIN);
    const fetch = vi
      .spyOn(globalThis, 'fetch')
      .mockImplementation((input, init) =>
        hung(input)
          ? new Promise((_resolve, reject) =>
              init?.signal?.addEventListener('abort', () => reject(new Error('timed out'))),
            )
          : realFetch(input, init),
      );
    try {
      const started = Date.now();
      const renewed = await Promise.all(tabs.map((tab) => tab.tokens.refresh()));
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(renewed.map((s) => s?.refreshToken)).toEqual(['r0', 'r1']);
      expect(fetch.mock.calls.filter(([input]) => hung(input))).toHaveLength(2);
    } finally {
      fetch.mockRestore();
      for (const tab of tabs) tab.tokens.clear();
    }
  });

  it('backs off while every handshake is refused after a connection that held', async () => {
    const server = await startTestServer({ SOCKETS_MAX_PER_USER: '1' });
    const realNow = Date.now.bind(Date);
    const clock = vi.spyOn(Date, 'now');
    const account = credentials();
    const client = new ParleyClient(server.url);
    const other = new ParleyClient(server.url);
    try {
      await client.register(account);
      const realtime = client.connect();
      await new Promise<void>((resolve) => realtime.socket.once('connect', resolve));
      // The connection held more than 10 s (the clock moved on, rather than the test waiting).
      clock.mockImplementation(() => realNow() + 11_000);
      realtime.socket.disconnect();
      // Another tab takes the user's only place: every handshake of this one is refused.
      await other.login({ email: account.email, password: account.password });
      const taken = other.connect();
      await new Promise<void>((resolve) => taken.socket.once('connect', resolve));
      const refusals: string[] = [];
      realtime.socket.on('connect_error', (error) => refusals.push(error.message));
      realtime.socket.connect();
      await sleep(4_000);
      // Backoff from 0 s: refused at about 0, 0, 1 and 3 s; not again and again at once.
      expect(refusals.length).toBeGreaterThanOrEqual(3);
      expect(refusals.length).toBeLessThanOrEqual(5);
      expect(new Set(refusals)).toEqual(new Set(['Too many connections for this user']));
      realtime.close();
      taken.close();
    } finally {
      clock.mockRestore();
      await server.close();
    }
  }, 15_000);

  it('rejects a call without an ack in time, and a typing event at once while disconnected', async () => {
    const server = await startTestServer();
    try {
      const client = new ParleyClient(server.url);
      await client.register(credentials());
      const realtime = client.connect({ callTimeoutMs: 200 });
      await new Promise<void>((resolve) => realtime.socket.once('connect', resolve));
      realtime.socket.disconnect();
      const started = Date.now();
      await expect(realtime.call('typing:start', { conversationId: 'c1' })).rejects.toThrow(
        'Not connected',
      );
      expect(Date.now() - started).toBeLessThan(100);
      // A call is buffered while disconnected; no ack comes, so it ends after the timeout.
      await expect(realtime.call('message:read', { conversationId: 'c1' })).rejects.toThrow();
      expect(Date.now() - started).toBeGreaterThanOrEqual(190);
      realtime.close();
    } finally {
      await server.close();
    }
  });
});
