// Issue 8, acceptance 9: no internals reach clients (SPEC §8). A local model in a directory with a
// distinctive name that does not load (missing, or not a GGUF), and an OpenAI-compatible upstream
// answering errors with distinctive raw text: every HTTP response (status line, headers, body,
// SSE frames) and every socket event of a session that uses everything touched by a failed answer
// is searched for them. Clients get a code and a plain message; the log gets the detail.
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createConversation, registerUser, type RegisteredUser } from '../factories.js';
import { startFakeAiServer } from '../support/ai.js';
import type { ApiResponse, Envelope } from '../support/api-client.js';
import { capturingLogger } from '../support/logs.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { connectAs, request, type RecordingSocket } from '../support/sockets.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** Everything clients received, as text: every response and every socket event. */
function recorder(server: TestServer) {
  const responses: string[] = [];
  const sockets: RecordingSocket[] = [];
  server.api.onResponse = (response: ApiResponse<unknown>) =>
    responses.push(`${response.status} ${JSON.stringify([...response.headers])}\n${response.text}`);
  return {
    sockets,
    text: () =>
      [...responses, ...sockets.flatMap((s) => s.received.map((r) => JSON.stringify(r)))].join(
        '\n',
      ),
    responses,
  };
}

interface Failed {
  generationId: string;
  code: string;
  error: string;
}

const errorFor = (socket: RecordingSocket, generationId: string) =>
  socket.next(
    'ai:error',
    (p) => (p as Failed).generationId === generationId,
    15_000,
  ) as Promise<Failed>;

/**
 * A session that touches every place a failed answer shows: /health, /ready, sends over REST,
 * over a socket and as an SSE stream, the generation's own stream, the message page, the
 * conversation and its list. Returns the ai:error events the owner's socket got.
 */
async function useEverything(server: TestServer, seen: ReturnType<typeof recorder>) {
  await server.api.get('/health');
  await server.api.get('/ready');
  const owner = await registerUser(server.api);
  const member = await registerUser(server.api);
  const conversation = await createConversation(server.api, owner, {
    participantIds: [member.user.id],
  });
  const ownerSocket = await connectAs(server.url, owner.accessToken);
  const memberSocket = await connectAs(server.url, member.accessToken);
  seen.sockets.push(ownerSocket, memberSocket);
  const send = (user: RegisteredUser, content: string, headers: Record<string, string> = {}) =>
    server.api.post<Envelope<{ generation: { id: string } }>>(
      `/api/chat/conversations/${conversation.id}/messages`,
      { content },
      { token: user.accessToken, headers },
    );

  const rest = await send(owner, 'Over REST');
  expect(rest.status).toBe(201);
  const restId = rest.body.data!.generation.id;
  const ack = await request(
    memberSocket.socket,
    'message:send',
    { conversationId: conversation.id, content: 'Over the socket' },
    15_000,
  );
  expect(ack.ok).toBe(true);
  const socketId = (ack as { data: { generation: { id: string } } }).data.generation.id;
  const errors = [await errorFor(ownerSocket, restId), await errorFor(ownerSocket, socketId)];
  await memberSocket.next('ai:stream:end', (p) => (p as Failed).generationId === socketId, 15_000);

  // The send answered as an SSE stream, and the first answer's own stream replayed.
  const sse = await send(owner, 'As a stream', { accept: 'text/event-stream' });
  expect(sse.text).toContain('event: error');
  const replay = await server.api.get(`/api/chat/generations/${restId}/stream`, {
    token: owner.accessToken,
  });
  expect(replay.text).toContain('event: error');

  const page = await server.api.get<
    Envelope<{ messages: Array<{ role: string; status: string }> }>
  >(`/api/chat/conversations/${conversation.id}/messages`, { token: member.accessToken });
  const answers = page.body.data!.messages.filter((m) => m.role === 'ASSISTANT');
  expect(answers.map((m) => m.status)).toEqual(['FAILED', 'FAILED', 'FAILED']);
  await server.api.get(`/api/conversations/${conversation.id}`, { token: owner.accessToken });
  await server.api.get('/api/conversations', { token: owner.accessToken });
  await server.api.get('/api/auth/me', { token: owner.accessToken });
  await server.api.get('/ready');
  ownerSocket.close();
  memberSocket.close();
  return errors;
}

describe.each([
  { label: 'missing', file: 'missing.gguf', bytes: undefined, cause: /ENOENT/ },
  {
    label: 'not a GGUF',
    file: 'junk.gguf',
    bytes: Buffer.from('these bytes are not a model\n'.repeat(200)),
    cause: /Invalid GGUF magic/,
  },
])('a local model file that does not load ($label)', ({ file, bytes, cause }) => {
  it('is named in no response and no event; the log names it with the cause', async () => {
    const secret = `parley-SECRET-PATH-${randomBytes(6).toString('hex')}`;
    const dir = path.join(tmpdir(), secret);
    dirs.push(dir);
    await mkdir(dir);
    const modelPath = path.join(dir, file);
    if (bytes) await writeFile(modelPath, bytes);
    const { logger, entries } = capturingLogger();
    const server = await startTestServer(
      {
        AI_PROVIDER: 'local',
        AI_MODEL_PATH: modelPath,
        AI_TITLES: 'false',
        MESSAGE_RATE_LIMIT: '100000',
      },
      { logger },
    );
    const seen = recorder(server);
    try {
      const errors = await useEverything(server, seen);
      const plain =
        'The local AI model is unavailable: the file AI_MODEL_PATH names could not be loaded. ' +
        'Set AI_MODEL_PATH to a GGUF file, or OPENAI_BASE_URL / OPENAI_API_KEY for a server.';
      for (const error of errors)
        expect(error).toMatchObject({ code: 'unavailable', error: plain });
      // /ready names the part and says what is wrong in the same plain words.
      const ready = await server.api.get<Envelope<never>>('/ready');
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({
        code: 'UNAVAILABLE',
        error: 'Not ready: model (local) unavailable',
        details: { checks: { database: 'ok', 'model (local)': 'fail' } },
      });
      expect(JSON.stringify(ready.body)).toContain(plain);

      const received = seen.text();
      expect(seen.responses.length).toBeGreaterThan(12);
      expect(received).toContain('ai:error'); // the events are in what was searched
      expect(received).not.toContain(secret);
      expect(received).not.toMatch(cause);
      // Operators are told: the file and the cause are in the log.
      const logged = JSON.stringify(entries);
      expect(logged).toContain(secret);
      expect(logged).toMatch(cause);
    } finally {
      await server.close();
    }
  }, 60_000);
});

describe('an OpenAI-compatible upstream answering errors', () => {
  it('gives clients a code and a plain message per kind; its raw text only reaches the log', async () => {
    const secret = `UPSTREAM-RAW-SECRET-${randomBytes(6).toString('hex')}`;
    const { logger, entries } = capturingLogger();
    // No retries: each scripted failure is the answer's only upstream request.
    const ai = await startFakeAiServer({ AI_MAX_RETRIES: '0' }, { logger });
    const { fake, server } = ai;
    const seen = recorder(server);
    const json = (message: string) => ({
      contentType: 'application/json',
      text: JSON.stringify({ error: { message, type: 'invalid_request_error', code: null } }),
    });
    const cases = [
      {
        status: 400,
        body: json(`${secret} model "gpt-x" not found under /srv/models`),
        code: 'bad-request',
        message:
          "The AI provider rejected the request; check the conversation's model and settings",
      },
      {
        status: 500,
        body: { contentType: 'text/plain', text: `${secret} Traceback at /srv/app.py line 3` },
        code: 'upstream',
        message: 'The AI provider failed to answer; try again',
      },
      {
        status: 401,
        body: json(`${secret} Incorrect API key provided: sk-test`),
        code: 'auth',
        message: 'The AI provider refused the API key; check OPENAI_API_KEY',
      },
      {
        status: 429,
        body: { contentType: 'text/html', text: `<h1>${secret} slow down</h1>` },
        code: 'rate-limit',
        message: 'The AI provider is rate limiting us; try again shortly',
      },
    ];
    try {
      const owner = await registerUser(server.api);
      const conversation = await createConversation(server.api, owner);
      const socket = await connectAs(server.url, owner.accessToken);
      seen.sockets.push(socket);
      for (const { status, body, code, message } of cases) {
        fake.script.push({ kind: 'status', status, body });
        const sent = await server.api.post<Envelope<{ generation: { id: string } }>>(
          `/api/chat/conversations/${conversation.id}/messages`,
          { content: `provoke ${status}` },
          { token: owner.accessToken },
        );
        const error = await errorFor(socket, sent.body.data!.generation.id);
        expect(error).toMatchObject({ code, error: message });
      }
      // The same failures seen as an SSE stream, on the page and by the rest of the session.
      fake.script.push({ kind: 'status', status: 400, body: json(`${secret} as a stream`) });
      const sse = await server.api.post(
        `/api/chat/conversations/${conversation.id}/messages`,
        { content: 'as a stream' },
        { token: owner.accessToken, headers: { accept: 'text/event-stream' } },
      );
      expect(sse.text).toContain('event: error');
      expect(sse.text).toContain('"code":"bad-request"');
      // The session's three answers: broken off midway, a 500, a 400.
      fake.script.push(
        { kind: 'fail-midway', tokens: ['Partial'] },
        { kind: 'status', status: 500, body: json(`${secret} in the session`) },
        { kind: 'status', status: 400, body: json(`${secret} in the session`) },
      );
      await useEverything(server, seen);

      const received = seen.text();
      expect(received).not.toContain(secret);
      expect(received).not.toContain('/srv/');
      const logged = JSON.stringify(entries);
      for (const status of [400, 500, 401, 429]) {
        expect(logged).toMatch(new RegExp(`failed \\([a-z-]+\\): ${status} [^"]*${secret}`));
      }
    } finally {
      await ai.close();
    }
  }, 60_000);
});
