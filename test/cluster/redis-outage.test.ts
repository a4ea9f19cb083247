// Issue 9, acceptance 7: the test's redis-server is stopped for 5 s and started again. While it is
// down, /ready names redis and every send answers 201 or 503 within 5 s; after it is back, the
// instances and the worker recover by themselves, the refused sends retried with their
// clientMessageId are stored exactly once, events cross instances again, an answer that was
// streaming meanwhile ends whole and in order, and new answers run on the worker.
// Real processes: 2 instances (WORKERS_INLINE=false) and 1 worker; GENERATION_LEASE=3s as in the
// other fault tests. The redis-server keeps nothing (no persistence): it comes back EMPTY, as a
// non-persistent Redis does. Sessions live in PostgreSQL, so tokens stay valid; rate-limit
// counters, caches and the queue start over.
//
// The tests of this file run in order and share one outage: the first makes it, the others
// check the recovery from it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createConversation,
  registerUser,
  type MessageData,
  type RegisteredUser,
} from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { useCluster, type ClusterInstance } from '../support/cluster.js';
import { startFakeOpenAi } from '../support/fake-openai.js';
import { connectAs, request, settle, type RecordingSocket } from '../support/sockets.js';

const fake = await startFakeOpenAi();
// Registered before useCluster's hooks: run after them, so the upstream outlives the processes.
afterAll(() => fake.close());

const cluster = useCluster({
  instances: 2,
  workers: 1,
  ai: { baseURL: fake.baseURL },
  env: { GENERATION_LEASE: '3s' },
});
const A = (): ClusterInstance => cluster().instances[0]!;
const B = (): ClusterInstance => cluster().instances[1]!;

const OUTAGE_MS = 5_000;
/** Every request during the outage has its answer within this long (SPEC §2). */
const ANSWER_WITHIN_MS = 5_000;
/** Rounds of sends during the outage, one every OUTAGE_MS / ROUNDS. */
const ROUNDS = 10;
/** How long the processes get to notice that Redis is back. */
const RECOVERY_MS = 15_000;

interface World {
  /** u0 sends through A (REST), u1 through B (REST), u2 on a socket on A, u3 on a socket on B. */
  users: RegisteredUser[];
  /** AI off: the sends of the outage. */
  quietId: string;
  /** AI on: an answer after the recovery. */
  chatId: string;
  onA: RecordingSocket;
  onB: RecordingSocket;
}
let world: World;
/** An answer that streams through the outage: asked before Redis stops, ends after it is back. */
let across: { generationId: string; messageId: string; full: string };

/** One send of the outage, and what became of it. */
interface Attempt {
  via: 'REST A' | 'REST B' | 'socket A' | 'socket B';
  user: RegisteredUser;
  content: string;
  clientMessageId: string;
  /** 201 or 503 for REST; 201 for an ok ack, 503 for an UNAVAILABLE one; else what came. */
  status?: number;
  detail?: string;
  ms?: number;
}
const attempts: Attempt[] = [];
/** /ready during the outage. */
const readiness: Array<{ instance: string; status: number; body: unknown; ms: number }> = [];

// Sockets of its own, not cluster().connect(): those close after each test, and these must stay
// connected through the outage and the recovery.
const sockets: RecordingSocket[] = [];
afterAll(() => sockets.forEach((socket) => socket.close()));

beforeAll(async () => {
  const users = await Promise.all(Array.from({ length: 4 }, () => registerUser(A().api)));
  const others = users.slice(1).map((u) => u.user.id);
  const [quiet, chat] = await Promise.all([
    createConversation(A().api, users[0]!, {
      participantIds: others,
      settings: { aiEnabled: false },
    }),
    createConversation(A().api, users[0]!, { participantIds: others }),
  ]);
  const [onA, onB] = await Promise.all([
    connectAs(A().url, users[2]!.accessToken),
    connectAs(B().url, users[3]!.accessToken),
  ]);
  sockets.push(onA, onB);
  world = { users, quietId: quiet.id, chatId: chat.id, onA, onB };
});

const sendPath = (conversationId: string) => `/api/chat/conversations/${conversationId}/messages`;

/** Sends one message as the attempt says; resolves with its status and how long it took. */
async function send(attempt: Attempt): Promise<{ status: number; detail: string; ms: number }> {
  const body = {
    conversationId: world.quietId,
    content: attempt.content,
    clientMessageId: attempt.clientMessageId,
  };
  const started = performance.now();
  const took = () => Math.round(performance.now() - started);
  if (attempt.via === 'REST A' || attempt.via === 'REST B') {
    const instance = attempt.via === 'REST A' ? A() : B();
    try {
      const response = await fetch(`${instance.url}${sendPath(world.quietId)}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${attempt.user.accessToken}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ content: body.content, clientMessageId: body.clientMessageId }),
        signal: AbortSignal.timeout(3 * ANSWER_WITHIN_MS),
      });
      const text = await response.text();
      const replayed = response.headers.get('idempotent-replayed') === 'true';
      return {
        status: response.status,
        detail: `${replayed ? 'replayed ' : ''}${text}`,
        ms: took(),
      };
    } catch (error) {
      return { status: 0, detail: String(error), ms: took() };
    }
  }
  const socket = attempt.via === 'socket A' ? world.onA : world.onB;
  try {
    const ack = await request(socket.socket, 'message:send', body, 3 * ANSWER_WITHIN_MS);
    if (ack.ok) {
      const replayed = (ack.data as { replayed?: boolean }).replayed === true;
      return { status: 201, detail: replayed ? 'replayed' : JSON.stringify(ack.data), ms: took() };
    }
    const status = ack.error.code === 'UNAVAILABLE' ? 503 : 0;
    return { status, detail: `${ack.error.code}: ${ack.error.message}`, ms: took() };
  } catch (error) {
    return { status: 0, detail: String(error), ms: took() };
  }
}

async function ready(instance: ClusterInstance) {
  const started = performance.now();
  const response = await fetch(`${instance.url}/ready`, {
    signal: AbortSignal.timeout(3 * ANSWER_WITHIN_MS),
  });
  const body: unknown = await response.json().catch(() => undefined);
  return { status: response.status, body, ms: Math.round(performance.now() - started) };
}

const describeAttempts = (list: Attempt[]) =>
  list
    .map((a) => `${a.via} ${a.clientMessageId}: ${a.status} in ${a.ms} ms (${a.detail})`)
    .join('\n');

describe('Redis stopped for 5 s and started again (empty)', () => {
  it('while it is down (an answer streaming): /ready on A and B names redis, and every send (REST through A and B, sockets on A and B) answers 201 or 503 UNAVAILABLE within 5 s', async () => {
    const tag = Math.random().toString(36).slice(2, 8);
    const vias = ['REST A', 'REST B', 'socket A', 'socket B'] as const;
    const inFlight: Array<Promise<void>> = [];

    // ~10 s of answer, well under way when Redis stops: it runs on through the outage.
    const tokens = Array.from({ length: 100 }, (_, i) => ` t${i}:${'x'.repeat(95)}`);
    fake.script.push({ kind: 'stream', tokens, delayMs: 100 });
    const generation = await ask(world.chatId, 'a long answer, please');
    across = {
      generationId: generation.id,
      messageId: generation.messageId,
      full: tokens.join(''),
    };
    await world.onB.next('ai:stream:delta', ofGeneration(generation.id), 5_000);

    await cluster().redis.stop();
    expect(world.onB.of('ai:stream:end').filter(ofGeneration(generation.id))).toEqual([]);
    const stoppedAt = Date.now();
    try {
      for (let round = 0; round < ROUNDS; round++) {
        await settle(stoppedAt + (round * OUTAGE_MS) / ROUNDS - Date.now());
        vias.forEach((via, i) => {
          const attempt: Attempt = {
            via,
            user: world.users[i]!,
            content: `outage ${tag} ${round} ${via}`,
            clientMessageId: `outage-${tag}-${round}-${i}`,
          };
          attempts.push(attempt);
          inFlight.push(send(attempt).then((outcome) => void Object.assign(attempt, outcome)));
        });
        if (round % 3 === 0) {
          for (const [name, instance] of [
            ['A', A()],
            ['B', B()],
          ] as const)
            inFlight.push(
              ready(instance).then((result) => void readiness.push({ instance: name, ...result })),
            );
        }
      }
      await settle(stoppedAt + OUTAGE_MS - Date.now());
    } finally {
      await cluster().redis.start();
    }
    await Promise.all(inFlight);

    expect(attempts).toHaveLength(ROUNDS * vias.length);
    const wrong = attempts.filter(
      (a) => (a.status !== 201 && a.status !== 503) || a.ms! >= ANSWER_WITHIN_MS,
    );
    expect(wrong, describeAttempts(wrong)).toEqual([]);
    // A 503 is the UNAVAILABLE envelope (REST) or error code (sockets).
    for (const attempt of attempts.filter((a) => a.status === 503)) {
      expect(attempt.detail, attempt.via).toMatch(/UNAVAILABLE/);
    }

    expect(readiness.length).toBe(2 * Math.ceil(ROUNDS / 3));
    for (const probe of readiness) {
      expect(probe.status, JSON.stringify(probe)).toBe(503);
      expect(probe.ms).toBeLessThan(ANSWER_WITHIN_MS);
      expect(probe.body).toMatchObject({
        success: false,
        code: 'UNAVAILABLE',
        error: expect.stringMatching(/redis/),
        details: { checks: { database: 'ok', redis: 'fail' } },
      });
    }
  });

  it('once it is back, A and B are ready again by themselves, and the sockets stayed connected', async () => {
    const deadline = Date.now() + RECOVERY_MS;
    let last: Array<{ status: number; body: unknown }> = [];
    while (Date.now() < deadline) {
      last = await Promise.all([ready(A()), ready(B())]);
      if (last.every((r) => r.status === 200)) break;
      await settle(200);
    }
    expect(
      last.map((r) => r.status),
      JSON.stringify(last),
    ).toEqual([200, 200]);
    expect([world.onA.socket.connected, world.onB.socket.connected]).toEqual([true, true]);
    expect(cluster().workers[0]!.running).toBe(true);
  });

  it('an answer that streamed through the outage ends SENT with all its text; the socket on B got every delta in order, once', async () => {
    const { generationId, messageId, full } = across;
    const end = (await world.onB.next(
      'ai:stream:end',
      ofGeneration(generationId),
      RECOVERY_MS,
    )) as { status: string; seq: number };
    await settle(400);
    expect(end.status).toBe('SENT');
    const deltas = (
      world.onB.of('ai:stream:delta') as Array<{ seq: number; delta: string }>
    ).filter(ofGeneration(generationId));
    const seqs = deltas.map((d) => d.seq);
    expect(seqs, JSON.stringify(seqs)).toEqual(seqs.map((_, i) => i + 1));
    expect(end.seq).toBe(seqs.length + 1);
    expect(deltas.map((d) => d.delta).join('')).toBe(full);
    expect(world.onB.of('ai:stream:end').filter(ofGeneration(generationId))).toHaveLength(1);
    expect(world.onB.of('ai:error').filter(ofGeneration(generationId))).toEqual([]);
    const stored = (await listAll(B(), world.users[3]!, world.chatId)).find(
      (m) => m.id === messageId,
    );
    expect(stored).toMatchObject({ status: 'SENT', content: full });
  });

  it('every send of the outage retried with its clientMessageId: the 503s are stored now, the 201s are replays; each message exists exactly once', async () => {
    expect(attempts.length).toBeGreaterThan(0);
    const retries = await Promise.all(
      attempts.map(async (attempt) => {
        // Connections other than the one /ready pings may take a moment longer: a 503 is retried.
        let outcome = await send(attempt);
        for (let i = 0; i < 10 && outcome.status === 503; i++) {
          await settle(300);
          outcome = await send(attempt);
        }
        return { attempt, ...outcome };
      }),
    );
    const failed = retries.filter((r) => r.status !== 201);
    expect(
      failed,
      failed.map((r) => `${r.attempt.clientMessageId}: ${r.status} ${r.detail}`).join('\n'),
    ).toEqual([]);
    for (const { attempt, detail } of retries) {
      // Sent during the outage (201): this is its replay. Refused (503): nothing of it was
      // stored, so this is the first copy, not a replay.
      const replayed = detail.startsWith('replayed');
      expect(replayed, `${attempt.via} ${attempt.clientMessageId}, first ${attempt.status}`).toBe(
        attempt.status === 201,
      );
    }

    const listed = await listAll(B(), world.users[0]!, world.quietId);
    const byClientId = new Map<string, MessageData[]>();
    for (const message of listed) {
      const key = String(message.clientMessageId);
      byClientId.set(key, [...(byClientId.get(key) ?? []), message]);
    }
    for (const attempt of attempts) {
      const copies = byClientId.get(attempt.clientMessageId) ?? [];
      expect(copies, attempt.clientMessageId).toHaveLength(1);
      expect(copies[0]).toMatchObject({ content: attempt.content, userId: attempt.user.user.id });
    }
    expect(listed).toHaveLength(attempts.length);
  });

  it('a send through A reaches the socket on B, and one through B the socket on A, exactly once (the adapter resubscribed)', async () => {
    const [u0, u1] = world.users;
    const fromA = await postMessage(A(), u0!, world.quietId, 'after the outage, through A');
    const fromB = await postMessage(B(), u1!, world.quietId, 'after the outage, through B');
    const withId = (id: string) => (p: unknown) =>
      (p as { message: { id: string } }).message.id === id;
    await Promise.all([
      world.onB.next('message:new', withId(fromA.id), 5_000),
      world.onA.next('message:new', withId(fromB.id), 5_000),
    ]);
    await settle(400);
    expect(world.onB.of('message:new').filter(withId(fromA.id))).toHaveLength(1);
    expect(world.onA.of('message:new').filter(withId(fromB.id))).toHaveLength(1);
  });

  it('a new AI answer, asked through A, runs on the worker and streams to the socket on B: SENT with all its text (queue and log recovered)', async () => {
    const tokens = ['After', ' the', ' outage', ',', ' all', ' is', ' well', '.'];
    fake.script.push({ kind: 'stream', tokens, delayMs: 20 });
    const generation = await ask(world.chatId, 'still there?');
    const end = (await world.onB.next(
      'ai:stream:end',
      ofGeneration(generation.id),
      RECOVERY_MS,
    )) as { status: string };
    expect(end.status).toBe('SENT');
    const text = (world.onB.of('ai:stream:delta') as Array<{ generationId: string; delta: string }>)
      .filter(ofGeneration(generation.id))
      .map((d) => d.delta)
      .join('');
    expect(text).toBe(tokens.join(''));
    const stored = (await listAll(B(), world.users[3]!, world.chatId)).find(
      (m) => m.id === generation.messageId,
    );
    expect(stored).toMatchObject({ status: 'SENT', content: tokens.join('') });
  });
});

const ofGeneration =
  (generationId: string) =>
  (payload: unknown): boolean =>
    (payload as { generationId?: string }).generationId === generationId;

/** u0 asks through A in the conversation with the AI on: 201 with the answer's generation. */
async function ask(conversationId: string, content: string) {
  const asked = await A().api.post<
    Envelope<{ message: MessageData; generation?: { id: string; messageId: string } }>
  >(sendPath(conversationId), { content }, { token: world.users[0]!.accessToken });
  expect(asked.status, asked.text).toBe(201);
  expect(asked.body.data?.generation, asked.text).toBeDefined();
  return asked.body.data!.generation!;
}

async function postMessage(
  instance: ClusterInstance,
  user: RegisteredUser,
  conversationId: string,
  content: string,
): Promise<MessageData> {
  const response = await instance.api.post<Envelope<{ message: MessageData }>>(
    sendPath(conversationId),
    { content },
    { token: user.accessToken },
  );
  expect(response.status, response.text).toBe(201);
  return response.body.data!.message;
}

/** Every message of a conversation, oldest first, paged through `instance`. */
async function listAll(
  instance: ClusterInstance,
  user: RegisteredUser,
  conversationId: string,
): Promise<MessageData[]> {
  const all: MessageData[] = [];
  let before: string | undefined;
  for (;;) {
    const query = `limit=100${before ? `&before=${before}` : ''}`;
    const page = await instance.api.get<Envelope<{ messages: MessageData[]; hasMore: boolean }>>(
      `${sendPath(conversationId)}?${query}`,
      { token: user.accessToken },
    );
    expect(page.status, page.text).toBe(200);
    const { messages, hasMore } = page.body.data!;
    all.unshift(...messages);
    if (!hasMore || messages.length === 0) return all;
    before = messages[0]!.id;
  }
}
