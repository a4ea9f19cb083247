// Signals to a real server process: SIGTERM finishes what is in flight and exits 0, SIGKILL
// mid-answer leaves the answer FAILED after a restart, never SENDING.
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { buildUserInput, type AuthData } from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { startFakeOpenAi } from '../support/fake-openai.js';
import {
  answeredBy,
  cleanUpProcessesAfterEach,
  instance,
  type Instance,
  startNode,
  stop,
  userWithConversation,
} from '../support/server-process.js';
import { connectAs } from '../support/sockets.js';

cleanUpProcessesAfterEach();

/** A server whose answers come from a fake upstream writing `words` words, one per 20 ms. */
async function withSlowAnswers(words: number, test: (target: Instance) => Promise<void>) {
  const fake = await startFakeOpenAi();
  try {
    fake.fallback = {
      kind: 'stream',
      tokens: Array.from({ length: words }, (_, i) => ` w${i}`),
      delayMs: 20,
    };
    await test(await instance(answeredBy(fake)));
  } finally {
    await fake.close();
  }
}

/** Waits until the conversation's answer, still being written, has some text stored. */
async function someTextStored(target: Instance, token: string, conversationId: string) {
  await expect
    .poll(
      async () => {
        const page = await target.api.get<
          Envelope<{ messages: Array<{ role: string; status: string; content: string | null }> }>
        >(`/api/chat/conversations/${conversationId}/messages`, { token });
        const answer = page.body.data!.messages.find((m) => m.role === 'ASSISTANT');
        return answer?.status === 'SENDING' && (answer.content ?? '').length > 0;
      },
      { timeout: 15_000, interval: 100 },
    )
    .toBe(true);
}

describe('graceful shutdown', () => {
  it('on SIGTERM stops accepting connections, finishes the request in flight, then exits 0', async () => {
    const target = await instance();
    const { port, url } = target;
    const server = await startNode(target);

    // A request whose body is still arriving when the signal comes.
    const body = JSON.stringify({ email: 'late@example.test', password: 'whatever-password' });
    const socket = connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let response = '';
    socket.on('data', (chunk: Buffer) => (response += chunk.toString()));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(
      `POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));

    server.child.kill('SIGTERM');
    await expect
      .poll(
        () =>
          fetch(`${url}/health`).then(
            () => 'served',
            () => 'refused',
          ),
        { timeout: 5_000 },
      )
      .toBe('refused');
    expect(server.child.exitCode).toBeNull();

    socket.write(body.slice(10));
    await closed;
    expect(response).toMatch(/^HTTP\/1\.1 401 /);
    expect(response).toContain('"code":"UNAUTHORIZED"');
    expect(await server.exited).toBe(0);
    expect(server.output()).toContain('Shutdown complete');
  }, 60_000);
});

describe('graceful shutdown with sockets connected', () => {
  it('disconnects sockets and still exits 0', async () => {
    const target = await instance();
    const server = await startNode(target);
    const user = await target.api.post<Envelope<AuthData>>('/api/auth/register', buildUserInput());
    const socket = await connectAs(target.url, user.body.data!.accessToken);
    const gone = new Promise((resolve) => socket.socket.once('disconnect', resolve));
    server.child.kill('SIGTERM');
    await gone;
    expect(await server.exited).toBe(0);
    expect(server.output()).toContain('Shutdown complete');
  }, 60_000);
});

describe('a crash in the middle of an AI answer', () => {
  it('leaves the answer FAILED after a restart, never SENDING', async () => {
    await withSlowAnswers(500, async (target) => {
      const first = await startNode(target);
      const { user, conversationId } = await userWithConversation(target);
      const sent = await target.api.post<Envelope<{ generation: { messageId: string } }>>(
        `/api/chat/conversations/${conversationId}/messages`,
        { content: 'Write forever' },
        { token: user.accessToken },
      );
      const answerId = sent.body.data!.generation.messageId;
      await someTextStored(target, user.accessToken, conversationId); // mid-answer
      first.child.kill('SIGKILL');
      await first.exited;

      const second = await startNode(target);
      expect(second.output()).toMatch(/1 interrupted AI answer\(s\) marked FAILED/);
      const page = await target.api.get<
        Envelope<{ messages: Array<{ id: string; status: string; content: string }> }>
      >(`/api/chat/conversations/${conversationId}/messages`, {
        token: user.accessToken,
      });
      const answer = page.body.data!.messages.find((m) => m.id === answerId)!;
      expect(answer.status).toBe('FAILED');
      // What had been saved as it grew is still there.
      expect(answer.content.length).toBeGreaterThan(0);
      expect(await stop(second)).toBe(0);
    });
  }, 60_000);
});

describe('SIGTERM in the middle of an AI answer streamed over SSE', () => {
  it('stops the answer after the grace period, keeps its text, ends the stream and exits 0', async () => {
    // 20 s of answer: longer than the grace period.
    await withSlowAnswers(1_000, async (target) => {
      const server = await startNode(target);
      const { user, conversationId } = await userWithConversation(target);
      const stream = await fetch(
        `${target.url}/api/chat/conversations/${conversationId}/messages`,
        {
          method: 'POST',
          headers: {
            authorization: `Bearer ${user.accessToken}`,
            'content-type': 'application/json',
            accept: 'text/event-stream',
          },
          body: JSON.stringify({ content: 'Write forever' }),
        },
      );
      expect(stream.status).toBe(201);
      const body = stream.text(); // read to the end in the background
      await someTextStored(target, user.accessToken, conversationId);
      const signalled = Date.now();
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
      expect(Date.now() - signalled).toBeLessThan(9_000);
      const events = await body;
      expect(events).toMatch(/event: end\ndata: [^\n]*"finishReason":"stopped"/);

      const again = await startNode(target);
      const page = await target.api.get<
        Envelope<{
          messages: Array<{ role: string; status: string; finishReason: string; content: string }>;
        }>
      >(`/api/chat/conversations/${conversationId}/messages`, { token: user.accessToken });
      const answer = page.body.data!.messages.find((m) => m.role === 'ASSISTANT')!;
      expect(answer).toMatchObject({ status: 'SENT', finishReason: 'stopped' });
      expect(answer.content.length).toBeGreaterThan(0);
      expect(again.output()).not.toMatch(/interrupted AI answer/);
      expect(await stop(again)).toBe(0);
    });
  }, 60_000);
});
