// Issue 5, acceptance 3 and 6: resuming a generation after a disconnect (socket and SSE) gets
// exactly the rest; regenerate and edit-branch make siblings, and ?branch=active follows the newest.
import { afterAll, beforeAll, afterEach, describe, expect, it } from 'vitest';
import { buildRoom, sendMessage, type MessageData, type RegisteredUser } from '../factories.js';
import type { Envelope } from '../support/api-client.js';
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

// Long tokens (~100 bytes): deltas wait for ~480 bytes of text, so these make one every few tokens.
const TOKENS = Array.from({ length: 60 }, (_, i) => ` t${i}:${'x'.repeat(95)}`);
const FULL = TOKENS.join('');

interface Delta {
  generationId: string;
  seq: number;
  delta: string;
}

const ask = (user: RegisteredUser, conversationId: string, content = 'go') =>
  sendForAnswer(server, user, conversationId, content);

const deltas = (socket: RecordingSocket, generationId: string) =>
  (socket.of('ai:stream:delta') as Delta[]).filter((d) => d.generationId === generationId);

/** Reads an SSE response into events (id, event, data). */
async function readSse(response: Response) {
  const text = await response.text();
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('id:'))
    .map((block) => {
      const fields = Object.fromEntries(
        block
          .split('\n')
          .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
      );
      return {
        id: Number(fields.id),
        event: fields.event!,
        data: JSON.parse(fields.data!) as Record<string, unknown>,
      };
    });
}

describe('resume', () => {
  it('over a socket, during the generation: exactly the missed deltas, then live, no gap, no duplicate', async () => {
    const room = await buildRoom(server.api);
    fake.script.push({ kind: 'stream', tokens: TOKENS, delayMs: 25 });
    const first = await sockets.connect(room.member);
    const { generation } = await ask(room.owner, room.conversation.id);
    await first.next('ai:stream:delta', (p) => (p as Delta).seq >= 5, 5_000);
    const seen = deltas(first, generation.id);
    const lastSeq = Math.max(...seen.map((d) => d.seq));
    first.close();
    await settle(200); // deltas flow on without us

    const second = await sockets.connect(room.member);
    const ack = await request(second.socket, 'generation:resume', {
      generationId: generation.id,
      afterSeq: lastSeq,
    });
    expect(ack).toMatchObject({ ok: true, data: { finished: false } });
    await second.next(
      'ai:stream:end',
      (p) => (p as { generationId: string }).generationId === generation.id,
      8_000,
    );
    const rest = deltas(second, generation.id);
    const seqs = [...seen, ...rest].map((d) => d.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1)); // 1..n, each once
    expect([...seen, ...rest].map((d) => d.delta).join('')).toBe(FULL);
    // Its end comes from the resume alone, not also from the conversation's broadcast.
    await settle(300);
    expect(second.of('ai:stream:end')).toHaveLength(1);
  });

  it('over a socket, after the generation ended: the rest, and the end', async () => {
    const room = await buildRoom(server.api);
    fake.script.push({ kind: 'stream', tokens: TOKENS, delayMs: 2 });
    const watcher = await sockets.connect(room.owner);
    const { generation } = await ask(room.owner, room.conversation.id);
    await watcher.next(
      'ai:stream:end',
      (p) => (p as { generationId: string }).generationId === generation.id,
      8_000,
    );

    const all = deltas(watcher, generation.id);
    expect(all.length).toBeGreaterThan(2);
    const from = Math.floor(all.length / 2);

    const late = await sockets.connect(room.member);
    const ack = await request(late.socket, 'generation:resume', {
      generationId: generation.id,
      afterSeq: from,
    });
    expect(ack).toMatchObject({ ok: true, data: { finished: true } });
    const rest = deltas(late, generation.id);
    expect(rest.map((d) => d.seq)).toEqual(all.filter((d) => d.seq > from).map((d) => d.seq));
    expect(rest.map((d) => d.delta).join('')).toBe(
      all
        .filter((d) => d.seq > from)
        .map((d) => d.delta)
        .join(''),
    );
    expect(late.of('ai:stream:end')).toHaveLength(1);
  });

  it('over SSE with Last-Event-ID: exactly the events after it, during and after the generation', async () => {
    const room = await buildRoom(server.api);
    fake.script.push({ kind: 'stream', tokens: TOKENS, delayMs: 15 });
    const { generation } = await ask(room.owner, room.conversation.id);
    const url = `${server.url}/api/chat/generations/${generation.id}/stream`;
    const headers = { authorization: `Bearer ${room.member.accessToken}` };

    // From the start, while it runs.
    const whole = await readSse(await fetch(url, { headers }));
    expect(whole[0]).toMatchObject({ id: 0, event: 'start' });
    expect(whole.at(-1)).toMatchObject({ event: 'end', data: { status: 'SENT' } });
    expect(whole.map((e) => e.id)).toEqual(whole.map((_, i) => i));
    const text = whole
      .filter((e) => e.event === 'delta')
      .map((e) => e.data.delta)
      .join('');
    expect(text).toBe(FULL);

    // Resumed after it ended, from event 7.
    const resumed = await readSse(
      await fetch(url, { headers: { ...headers, 'last-event-id': '7' } }),
    );
    expect(resumed[0]!.id).toBe(8);
    expect(resumed.map((e) => e.id)).toEqual(whole.slice(8).map((e) => e.id));
    expect(resumed.at(-1)!.event).toBe('end');

    // Reconnecting after the end (an EventSource does, with the end's id): 204 at once, which
    // tells it to stop, rather than a stream that never ends.
    const afterEnd = await fetch(url, {
      headers: { ...headers, 'last-event-id': String(whole.at(-1)!.id) },
      signal: AbortSignal.timeout(3_000),
    });
    expect(afterEnd.status).toBe(204);
    expect(await afterEnd.text()).toBe('');
  });

  it('over SSE, an empty Last-Event-ID or ?lastEventId counts as absent: the stream starts with start', async () => {
    const room = await buildRoom(server.api);
    fake.script.push({ kind: 'stream', tokens: ['Hi', ' there'] });
    const { generation } = await ask(room.owner, room.conversation.id);
    const url = `${server.url}/api/chat/generations/${generation.id}/stream`;
    const headers = { authorization: `Bearer ${room.member.accessToken}` };

    for (const [name, response] of [
      ['empty header', await fetch(url, { headers: { ...headers, 'last-event-id': '' } })],
      ['blank header', await fetch(url, { headers: { ...headers, 'last-event-id': ' ' } })],
      ['empty query', await fetch(`${url}?lastEventId=`, { headers })],
    ] as const) {
      expect(response.status, name).toBe(200);
      const events = await readSse(response);
      expect(events[0], name).toMatchObject({ id: 0, event: 'start' });
      expect(
        events.map((e) => e.id),
        name,
      ).toEqual(events.map((_, i) => i));
      expect(events.at(-1), name).toMatchObject({ event: 'end' });
    }
  });

  it('over SSE, reconnecting with Last-Event-ID while it runs: the rest exactly once', async () => {
    const room = await buildRoom(server.api);
    fake.script.push({ kind: 'stream', tokens: TOKENS, delayMs: 25 });
    const { generation } = await ask(room.owner, room.conversation.id);
    const url = `${server.url}/api/chat/generations/${generation.id}/stream`;
    const headers = { authorization: `Bearer ${room.member.accessToken}` };

    // Read until a few deltas have come, then drop the connection as a flaky network would.
    const controller = new AbortController();
    const first = await fetch(url, { headers, signal: controller.signal });
    const reader = first.body!.getReader();
    let buffered = '';
    const seen: Array<{ id: number; event: string; delta?: string }> = [];
    while (seen.filter((e) => e.event === 'delta').length < 3) {
      const { value } = await reader.read();
      buffered += new TextDecoder().decode(value as Uint8Array);
      const blocks = buffered.split('\n\n');
      buffered = blocks.pop()!;
      for (const block of blocks.filter((b) => b.startsWith('id:'))) {
        const [idLine, eventLine, dataLine] = block.split('\n');
        const data = JSON.parse(dataLine!.slice('data: '.length)) as { delta?: string };
        seen.push({ id: Number(idLine!.slice(4)), event: eventLine!.slice(7), delta: data.delta });
      }
    }
    controller.abort();
    const lastId = seen.at(-1)!.id;

    const rest = await readSse(
      await fetch(url, { headers: { ...headers, 'last-event-id': String(lastId) } }),
    );
    expect(rest.at(-1)).toMatchObject({ event: 'end', data: { status: 'SENT' } });
    const ids = [...seen.map((e) => e.id), ...rest.map((e) => e.id)];
    expect(ids).toEqual(ids.map((_, i) => i)); // 0..n, each once
    const text = [
      ...seen.filter((e) => e.event === 'delta').map((e) => e.delta),
      ...rest.filter((e) => e.event === 'delta').map((e) => e.data.delta as string),
    ].join('');
    expect(text).toBe(FULL);
  });

  it('answers the send itself as SSE with Accept: text/event-stream', async () => {
    const room = await buildRoom(server.api);
    fake.script.push({ kind: 'stream', tokens: ['Hi', ' there'] });
    const response = await fetch(
      `${server.url}/api/chat/conversations/${room.conversation.id}/messages`,
      {
        method: 'POST',
        headers: {
          authorization: `Bearer ${room.owner.accessToken}`,
          'content-type': 'application/json',
          accept: 'text/event-stream',
        },
        body: JSON.stringify({ content: 'hello' }),
      },
    );
    expect(response.status).toBe(201);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    expect(response.headers.get('x-generation-id')).toBeTruthy();
    const events = await readSse(response);
    expect(events[0]!.event).toBe('start');
    expect(events.at(-1)).toMatchObject({ event: 'end', data: { status: 'SENT' } });
    // The first token goes out at once, the rest coalesced: the text is what counts.
    expect(
      events
        .filter((e) => e.event === 'delta')
        .map((e) => e.data.delta)
        .join(''),
    ).toBe('Hi there');
  });

  it('refuses outsiders on both paths', async () => {
    const room = await buildRoom(server.api);
    const { generation } = await ask(room.owner, room.conversation.id);
    const outsider = await server.api.post<Envelope<{ accessToken: string }>>(
      '/api/auth/register',
      {
        email: `o${Date.now()}@example.test`,
        password: 'password-123',
      },
    );
    const token = outsider.body.data!.accessToken;
    const sse = await fetch(`${server.url}/api/chat/generations/${generation.id}/stream`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(sse.status).toBe(403);
    const socket = await sockets.connect({ accessToken: token });
    expect(
      await request(socket.socket, 'generation:resume', {
        generationId: generation.id,
        afterSeq: -1,
      }),
    ).toMatchObject({
      ok: false,
      error: { code: 'PERMISSION_DENIED' },
    });
    expect(socket.of('ai:stream:delta')).toEqual([]);
  });
});

describe('branches', () => {
  interface Stored extends MessageData {
    role: string;
    parentId: string | null;
    alternativeOf: string | null;
    superseded: boolean;
    status: string;
  }
  const list = async (user: RegisteredUser, conversationId: string, query = '') =>
    (
      await server.api.get<Envelope<{ messages: Stored[] }>>(
        `/api/chat/conversations/${conversationId}/messages${query}`,
        { token: user.accessToken },
      )
    ).body.data!.messages;

  const waitDone = async (user: RegisteredUser, conversationId: string) => {
    for (let i = 0; i < 100; i++) {
      if ((await list(user, conversationId)).every((m) => m.status !== 'SENDING')) return;
      await settle(30);
    }
  };

  it('regenerate and edit-branch make alternatives; ?branch=active shows the newest version', async () => {
    const room = await buildRoom(server.api);
    const conversationId = room.conversation.id;
    fake.fallback = { kind: 'stream', tokens: ['answer'] };
    const first = await ask(room.member, conversationId, 'first question');
    await waitDone(room.member, conversationId);
    const second = await ask(room.member, conversationId, 'second question');
    await waitDone(room.member, conversationId);

    // A plain send replies to nothing; an answer replies to its question.
    const all = await list(room.member, conversationId);
    expect(all.find((m) => m.id === second.message.id)!.parentId).toBeNull();
    expect(all.find((m) => m.id === second.generation.messageId)!.parentId).toBe(second.message.id);

    // Regenerate the second answer: an alternative of it, answering the same question.
    const regenerated = await server.api.post<
      Envelope<{ generation: { id: string; messageId: string } }>
    >(`/api/chat/messages/${second.generation.messageId}/regenerate`, undefined, {
      token: room.owner.accessToken,
    });
    expect(regenerated.status).toBe(201);
    await waitDone(room.member, conversationId);
    const afterRegen = await list(room.member, conversationId);
    const newAnswer = afterRegen.find((m) => m.id === regenerated.body.data!.generation.messageId)!;
    expect(newAnswer).toMatchObject({
      role: 'ASSISTANT',
      parentId: second.message.id,
      alternativeOf: second.generation.messageId,
      superseded: false,
    });
    expect(afterRegen.find((m) => m.id === second.generation.messageId)).toMatchObject({
      superseded: true,
    });
    let active = await list(room.member, conversationId, '?branch=active');
    expect(active.map((m) => m.id)).toEqual([
      first.message.id,
      first.generation.messageId,
      second.message.id,
      regenerated.body.data!.generation.messageId,
    ]);

    // Edit-and-resend the first question: the old question and its answer leave the branch,
    // nothing else does; the new version and its answer come last.
    const edited = await server.api.post<
      Envelope<{ message: Stored; generation: { messageId: string } }>
    >(
      `/api/chat/messages/${first.message.id}/edit-branch`,
      { content: 'first question, better' },
      { token: room.member.accessToken },
    );
    expect(edited.status).toBe(201);
    expect(edited.body.data!.message).toMatchObject({
      role: 'USER',
      parentId: null,
      alternativeOf: first.message.id,
      content: 'first question, better',
    });
    await waitDone(room.member, conversationId);
    active = await list(room.member, conversationId, '?branch=active');
    expect(active.map((m) => m.id)).toEqual([
      second.message.id,
      regenerated.body.data!.generation.messageId,
      edited.body.data!.message.id,
      edited.body.data!.generation.messageId,
    ]);
    // The old versions are still there in the full list, marked.
    const everything = await list(room.member, conversationId);
    expect(
      everything
        .filter((m) => m.superseded)
        .map((m) => m.id)
        .sort(),
    ).toEqual([first.message.id, first.generation.messageId, second.generation.messageId].sort());
    // A client that read the branch before the edit pages on from a message now off it.
    const offBranch = await server.api.get<Envelope<{ messages: Stored[] }>>(
      `/api/chat/conversations/${conversationId}/messages?branch=active&after=${first.message.id}`,
      { token: room.member.accessToken },
    );
    expect(offBranch.status).toBe(200);
    expect(offBranch.body.data!.messages.map((m) => m.id)).toEqual(active.map((m) => m.id));

    // Only the author may edit-and-resend; regenerate wants an AI answer.
    expect(
      (
        await server.api.post(
          `/api/chat/messages/${first.message.id}/edit-branch`,
          { content: 'x' },
          { token: room.owner.accessToken },
        )
      ).status,
    ).toBe(403);
    expect(
      (
        await server.api.post(`/api/chat/messages/${first.message.id}/regenerate`, undefined, {
          token: room.owner.accessToken,
        })
      ).status,
    ).toBe(400);
    fake.fallback = { kind: 'stream', tokens: ['Hello', ' there', '!'] };
  });

  it('sends AI context from the active branch only', async () => {
    const room = await buildRoom(server.api);
    fake.fallback = { kind: 'stream', tokens: ['ok'] };
    const a = await ask(room.member, room.conversation.id, 'question A');
    await waitDone(room.member, room.conversation.id);
    await server.api.post(
      `/api/chat/messages/${a.message.id}/edit-branch`,
      { content: 'question B' },
      { token: room.member.accessToken },
    );
    await waitDone(room.member, room.conversation.id);
    await sendMessage(server.api, room.member, room.conversation.id, 'and then?');
    await waitDone(room.member, room.conversation.id);
    const sent = fake.requests.at(-1)!.body.messages.map((m) => m.content);
    expect(sent).toContain('question B');
    expect(sent).not.toContain('question A');
    expect(sent.at(-1)).toBe('and then?');
    fake.fallback = { kind: 'stream', tokens: ['Hello', ' there', '!'] };
  });
});
