// Issue 9, acceptance 6: processes die and the cluster carries on. kill -9 of the worker
// mid-answer ends the answer FAILED (never SENDING forever) and its followers get the end;
// kill -9 of an API instance leaves its clients to reconnect to the other and resume with no gap
// or duplicate, and loses no message it acknowledged with a 201; restarting an instance leaves
// the answers running elsewhere alone. Real processes: 2 instances (WORKERS_INLINE=false) and 1
// worker, with GENERATION_LEASE=3s so an answer of a killed process is failed within seconds
// (the default is 15 s) and the file stays short.
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createConversation,
  registerUser,
  type MessageData,
  type RegisteredUser,
} from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { useCluster, type ClusterInstance, type ClusterProcess } from '../support/cluster.js';
import { startFakeOpenAi } from '../support/fake-openai.js';
import { request, settle, type RecordingSocket } from '../support/sockets.js';

const fake = await startFakeOpenAi();
// Registered before useCluster's hooks: run after them (hooks after a test run last-in first),
// so the upstream outlives the processes that call it.
afterAll(() => fake.close());

const cluster = useCluster({
  instances: 2,
  workers: 1,
  ai: { baseURL: fake.baseURL },
  env: { GENERATION_LEASE: '3s' },
});
const A = (): ClusterInstance => cluster().instances[0]!;
const B = (): ClusterInstance => cluster().instances[1]!;
const worker = (): ClusterProcess => cluster().workers[0]!;

/** What the acceptance allows for a killed worker's answer to end (the lease is 3 s here). */
const ANSWER_ENDS_WITHIN_MS = 60_000;
/** How long after an event's first copy a duplicate would have arrived. */
const DUPLICATE_WINDOW_MS = 400;

// A test may leave a process killed: each starts with the whole cluster up again.
beforeEach(async () => {
  const all = [...cluster().instances, ...cluster().workers];
  await Promise.all(all.filter((p) => !p.running).map((p) => p.restart()));
});

interface Delta {
  generationId: string;
  seq: number;
  delta: string;
}
interface StreamEnd {
  generationId: string;
  seq: number;
  status: string;
  finishReason: string;
}
interface AiError {
  generationId: string;
  seq: number;
  code: string;
}

/**
 * Long tokens (~100 bytes): a delta carries about 480 bytes, so an answer of `count` tokens
 * `delayMs` apart streams a delta every few tokens for count × delayMs.
 */
function slowAnswer(tag: string, count: number, delayMs: number) {
  const tokens = Array.from({ length: count }, (_, i) => ` ${tag}${i}:${'x'.repeat(95)}`);
  fake.script.push({ kind: 'stream', tokens, delayMs });
  return tokens.join('');
}

const ofGeneration =
  (generationId: string) =>
  (payload: unknown): boolean =>
    (payload as { generationId?: string }).generationId === generationId;

const deltasOf = (socket: RecordingSocket, generationId: string) =>
  (socket.of('ai:stream:delta') as Delta[]).filter(ofGeneration(generationId));

/** Alice on A and Bob on B share a conversation with the AI on. Fresh users every test. */
async function pair() {
  const [alice, bob] = await Promise.all([registerUser(A().api), registerUser(B().api)]);
  const conversation = await createConversation(A().api, alice, {
    participantIds: [bob.user.id],
  });
  const [onA, onB] = await Promise.all([A().connect(alice), B().connect(bob)]);
  await settle(200); // presence notices of the connects
  onA.clear();
  onB.clear();
  return { alice, bob, conversationId: conversation.id, onA, onB };
}

/** A send that starts an answer (201 with its generation). */
async function ask(
  instance: ClusterInstance,
  user: RegisteredUser,
  conversationId: string,
  content = 'tell me a long story',
) {
  const sent = await instance.api.post<
    Envelope<{ message: MessageData; generation?: { id: string; messageId: string } }>
  >(`/api/chat/conversations/${conversationId}/messages`, { content }, { token: user.accessToken });
  expect(sent.status, sent.text).toBe(201);
  expect(sent.body.data?.generation, sent.text).toBeDefined();
  return sent.body.data!.generation!;
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
      `/api/chat/conversations/${conversationId}/messages?${query}`,
      { token: user.accessToken },
    );
    expect(page.status, page.text).toBe(200);
    const { messages, hasMore } = page.body.data!;
    all.unshift(...messages);
    if (!hasMore || messages.length === 0) return all;
    before = messages[0]!.id;
  }
}

async function messageThrough(
  instance: ClusterInstance,
  user: RegisteredUser,
  conversationId: string,
  messageId: string,
) {
  const found = (await listAll(instance, user, conversationId)).find((m) => m.id === messageId);
  expect(found, `message ${messageId}`).toBeDefined();
  return found as MessageData & { status: string; finishReason: string | null };
}

/** Seqs 1..n, each once, in order. */
function expectContiguous(deltas: Delta[]) {
  const seqs = deltas.map((d) => d.seq);
  expect(seqs, JSON.stringify(seqs)).toEqual(seqs.map((_, i) => i + 1));
}

/** SSE blocks of a finished stream response. */
async function readSse(response: Response) {
  const text = await response.text();
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('id:'))
    .map((block) => {
      const field = (name: string) =>
        block
          .split('\n')
          .find((line) => line.startsWith(`${name}: `))
          ?.slice(name.length + 2) ?? '';
      return {
        id: Number(field('id')),
        event: field('event'),
        data: JSON.parse(field('data')) as Record<string, unknown>,
      };
    });
}

describe('kill -9 of the worker mid-answer', () => {
  it('the answer ends FAILED within 60 s with the text it had, never left SENDING; sockets on A and B and an SSE stream on B get the end once', async () => {
    const { alice, bob, conversationId, onA, onB } = await pair();
    const full = slowAnswer('w', 200, 50); // ~10 s: far longer than the test waits
    const generation = await ask(A(), alice, conversationId);
    const sse = fetch(`${B().url}/api/chat/generations/${generation.id}/stream`, {
      headers: { authorization: `Bearer ${bob.accessToken}` },
      signal: AbortSignal.timeout(ANSWER_ENDS_WITHIN_MS),
    });
    await onA.next('ai:stream:delta', ofGeneration(generation.id), 10_000);
    // Over a second of streaming: the stored message has had its text saved (about once a second).
    await settle(1_500);
    expect((await messageThrough(B(), bob, conversationId, generation.messageId)).status).toBe(
      'SENDING',
    );

    const exit = await worker().kill('SIGKILL');
    expect(exit.signal).toBe('SIGKILL');
    const killedAt = Date.now();
    const ends = await Promise.all(
      [onA, onB].map(
        (socket) =>
          socket.next(
            'ai:stream:end',
            ofGeneration(generation.id),
            ANSWER_ENDS_WITHIN_MS,
          ) as Promise<StreamEnd>,
      ),
    );
    const endedAfterMs = Date.now() - killedAt;
    expect(endedAfterMs).toBeLessThan(ANSWER_ENDS_WITHIN_MS);
    await settle(DUPLICATE_WINDOW_MS);

    const streamed = deltasOf(onA, generation.id);
    expect(streamed.length).toBeGreaterThan(0);
    expectContiguous(streamed);
    const lastSeq = streamed.at(-1)!.seq;
    for (const [socket, end] of [
      [onA, ends[0]],
      [onB, ends[1]],
    ] as const) {
      expect(end).toMatchObject({ status: 'FAILED', finishReason: 'error', seq: lastSeq + 1 });
      expect(socket.of('ai:stream:end').filter(ofGeneration(generation.id))).toHaveLength(1);
      const errors = socket.of('ai:error').filter(ofGeneration(generation.id)) as AiError[];
      expect(errors).toEqual([expect.objectContaining({ code: 'interrupted', seq: lastSeq + 1 })]);
      // Both saw the same text up to the kill.
      expect(deltasOf(socket, generation.id)).toEqual(streamed);
    }

    const text = streamed.map((d) => d.delta).join('');
    expect(full.startsWith(text)).toBe(true);
    const stored = await messageThrough(B(), bob, conversationId, generation.messageId);
    expect(stored.status).toBe('FAILED');
    expect(stored.finishReason).toBe('error');
    // The text it had: what was saved last, a non-empty prefix of what the followers saw.
    expect(stored.content).toBeTruthy();
    expect(text.startsWith(stored.content!)).toBe(true);

    const events = await readSse(await sse);
    expect(events[0]).toMatchObject({ id: 0, event: 'start' });
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i));
    expect(events.at(-1)).toMatchObject({
      id: lastSeq + 1,
      event: 'error',
      data: { code: 'interrupted' },
    });
  });

  it('a worker started again takes new answers, and the killed answer stays FAILED', async () => {
    // beforeEach started the worker again if the test above left it killed.
    const { alice, conversationId, onA } = await pair();
    const full = slowAnswer('n', 5, 5);
    const generation = await ask(A(), alice, conversationId, 'are you back?');
    const end = (await onA.next('ai:stream:end', ofGeneration(generation.id), 15_000)) as StreamEnd;
    expect(end.status).toBe('SENT');
    expect(
      deltasOf(onA, generation.id)
        .map((d) => d.delta)
        .join(''),
    ).toBe(full);

    const failed = (await listAll(A(), alice, conversationId)).filter(
      (m) => (m as { status?: string }).status === 'SENDING',
    );
    expect(failed).toEqual([]);
  });
});

describe('kill -9 of instance A', () => {
  it('a client of A reconnects to B and resumes the answer after the last seq it saw: the rest exactly once, no gap', async () => {
    const { alice, conversationId, onA, onB } = await pair();
    const full = slowAnswer('r', 80, 60); // ~5 s
    const generation = await ask(A(), alice, conversationId);
    await onA.next(
      'ai:stream:delta',
      (p) => ofGeneration(generation.id)(p) && (p as Delta).seq >= 3,
      10_000,
    );

    expect((await A().kill('SIGKILL')).signal).toBe('SIGKILL');
    const seenOnA = deltasOf(onA, generation.id);
    const lastSeq = seenOnA.at(-1)!.seq;
    // The client's reconnect delay: the answer streams on meanwhile, to be replayed.
    await settle(500);

    const again = await B().connect(alice);
    const ack = await request(again.socket, 'generation:resume', {
      generationId: generation.id,
      afterSeq: lastSeq,
    });
    expect(ack).toMatchObject({ ok: true, data: { generationId: generation.id, finished: false } });
    const replayed = (ack as { data: { replayed: number } }).data.replayed;
    expect(replayed).toBeGreaterThan(0);

    const end = (await again.next(
      'ai:stream:end',
      ofGeneration(generation.id),
      15_000,
    )) as StreamEnd;
    expect(end.status).toBe('SENT');
    await settle(DUPLICATE_WINDOW_MS);

    const rest = deltasOf(again, generation.id);
    expect(rest[0]?.seq).toBe(lastSeq + 1);
    expectContiguous([...seenOnA, ...rest]);
    expect([...seenOnA, ...rest].map((d) => d.delta).join('')).toBe(full);
    expect(end.seq).toBe(rest.at(-1)!.seq + 1);
    // Exactly once: the replay and the live events never both deliver one.
    expect(again.of('ai:stream:end').filter(ofGeneration(generation.id))).toHaveLength(1);
    expect(again.of('ai:stream:start').filter(ofGeneration(generation.id))).toEqual([]);

    // Bob, on B all along, heard all of it once; the stored answer is the whole text.
    expectContiguous(deltasOf(onB, generation.id));
    expect(onB.of('ai:stream:end').filter(ofGeneration(generation.id))).toHaveLength(1);
    const stored = await messageThrough(B(), alice, conversationId, generation.messageId);
    expect(stored).toMatchObject({ status: 'SENT', content: full });
  });

  it('every message that got a 201 from A before its kill -9 is listed through B, once; retried with their clientMessageId, all are there exactly once', async () => {
    // 10 users × 10 sends, and at most 10 retries each: within each user's 30 sends a minute
    // (every attempt counts, also one A took before it died).
    const users = await Promise.all(Array.from({ length: 10 }, () => registerUser(B().api)));
    const owner = users[0]!;
    const conversation = await createConversation(B().api, owner, {
      participantIds: users.slice(1).map((u) => u.user.id),
      settings: { aiEnabled: false },
    });
    const tag = Math.random().toString(36).slice(2, 8);
    const sends = Array.from({ length: 100 }, (_, i) => ({
      user: users[i % users.length]!,
      content: `burst ${tag} ${i}`,
      clientMessageId: `burst-${tag}-${i}`,
    }));
    const path = `/api/chat/conversations/${conversation.id}/messages`;

    let created = 0;
    let killing: Promise<unknown> | undefined;
    const outcomes = await Promise.all(
      sends.map(async ({ user, content, clientMessageId }) => {
        try {
          const response = await A().api.post<Envelope<{ message: MessageData }>>(
            path,
            { content, clientMessageId },
            { token: user.accessToken },
          );
          if (response.status === 201 && ++created === 20) killing = A().kill('SIGKILL');
          return {
            status: response.status,
            id: response.body.data?.message.id,
            text: response.text,
          };
        } catch (error) {
          return { status: 0, id: undefined, text: String(error) };
        }
      }),
    );
    expect(killing, 'A was killed after its 20th 201').toBeDefined();
    expect((await killing) as { signal: string }).toMatchObject({ signal: 'SIGKILL' });
    // A dead process answers nothing: each send got its 201 or lost its connection.
    const answered = outcomes.filter((o) => o.status !== 0);
    expect(
      answered.filter((o) => o.status !== 201),
      'responses other than 201',
    ).toEqual([]);
    const acknowledged = outcomes.flatMap((o) => (o.status === 201 ? [o.id!] : []));
    expect(acknowledged.length).toBeGreaterThanOrEqual(20);
    // The kill landed mid-burst: some sends never got their answer.
    expect(acknowledged.length).toBeLessThan(sends.length);

    const listed = await listAll(B(), owner, conversation.id);
    const listedIds = new Set(listed.map((m) => m.id));
    expect(acknowledged.filter((id) => !listedIds.has(id))).toEqual([]);
    const contents = listed.map((m) => m.content);
    expect(new Set(contents).size, 'a message listed twice').toBe(contents.length);
    const attempted = new Set(sends.map((s) => s.content));
    expect(contents.filter((c) => !attempted.has(c!))).toEqual([]);

    // The client retries what got no answer through B: an in-flight send that A committed comes
    // back as its replay, never as a second message.
    const retried = await Promise.all(
      sends.map(async ({ user, content, clientMessageId }, i) => {
        if (outcomes[i]!.status === 201) return undefined;
        const response = await B().api.post<Envelope<{ message: MessageData }>>(
          path,
          { content, clientMessageId },
          { token: user.accessToken },
        );
        expect(response.status, response.text).toBe(201);
        return response;
      }),
    );
    const after = await listAll(B(), owner, conversation.id);
    expect(after.map((m) => m.content).sort()).toEqual(sends.map((s) => s.content).sort());
    // A replayed retry (a send A committed without answering) names the one stored message.
    const afterIds = new Set(after.map((m) => m.id));
    const replayed = retried.filter((r) => r?.headers.get('idempotent-replayed') === 'true');
    expect(replayed.filter((r) => !afterIds.has(r!.body.data!.message.id))).toEqual([]);
  });
});

describe('restarting an instance', () => {
  it('does not touch the answers running on the worker, whichever instance started them: both end SENT with all their text', async () => {
    const { alice, bob, conversationId, onB } = await pair();
    // Two answers of ~8 s, far longer than a restart.
    const fromA = slowAnswer('a', 80, 100);
    const fromB = slowAnswer('b', 80, 100);
    const first = await ask(A(), alice, conversationId, 'first question');
    await onB.next('ai:stream:delta', ofGeneration(first.id), 10_000);
    const second = await ask(B(), bob, conversationId, 'second question');
    await onB.next('ai:stream:delta', ofGeneration(second.id), 10_000);

    await A().restart(); // SIGTERM, then started again until /ready answers 200
    // The restart overlapped both answers: neither had ended when A was back.
    expect(onB.of('ai:stream:end')).toEqual([]);

    const ends = (await Promise.all(
      [first, second].map((g) => onB.next('ai:stream:end', ofGeneration(g.id), 20_000)),
    )) as StreamEnd[];
    expect(ends.map((e) => e.status)).toEqual(['SENT', 'SENT']);
    expect(ends.map((e) => e.finishReason)).toEqual(['stop', 'stop']);
    expect(onB.of('ai:error')).toEqual([]);
    for (const [generation, full] of [
      [first, fromA],
      [second, fromB],
    ] as const) {
      const deltas = deltasOf(onB, generation.id);
      expectContiguous(deltas);
      expect(deltas.map((d) => d.delta).join('')).toBe(full);
      // Read through the restarted instance.
      const stored = await messageThrough(A(), alice, conversationId, generation.messageId);
      expect(stored).toMatchObject({ status: 'SENT', content: full });
    }
  });
});
