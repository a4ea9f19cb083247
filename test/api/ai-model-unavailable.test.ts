// Issue 8, acceptance 12, through the server as configured: AI_PROVIDER=local, no AI_MODEL_PATH,
// and a Hugging Face stand-in that has nothing (404) and counts what it is asked. A burst of
// sends over REST and Socket.IO costs no download attempt of its own: each answer fails at once
// with the plain error, and the stand-in hears from the server once.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConversation, registerUser } from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { capturingLogger } from '../support/logs.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { connectAs, request } from '../support/sockets.js';

let hf: Server;
const hfRequests: string[] = [];
let dataDir: string;
let server: TestServer;
const { logger, entries } = capturingLogger();
const previousEndpoint = process.env.HF_ENDPOINT;

beforeAll(async () => {
  hf = createServer((req, res) => {
    hfRequests.push(req.url ?? '');
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => hf.listen(0, '127.0.0.1', resolve));
  // node-llama-cpp reads it at each resolution; this file runs in a process of its own.
  process.env.HF_ENDPOINT = `http://127.0.0.1:${(hf.address() as AddressInfo).port}/`;
  dataDir = await mkdtemp(path.join(tmpdir(), 'parley-unavailable-'));
  server = await startTestServer(
    {
      AI_PROVIDER: 'local',
      DATA_DIR: dataDir,
      AI_TITLES: 'false',
      MESSAGE_RATE_LIMIT: '100000',
      // One user sends all twenty at once: the per-user cap of answers is not what this tests.
      AI_MAX_PENDING_PER_USER: '100',
    },
    { logger },
  );
});

afterAll(async () => {
  await server.close();
  if (previousEndpoint === undefined) delete process.env.HF_ENDPOINT;
  else process.env.HF_ENDPOINT = previousEndpoint;
  hf.closeAllConnections();
  await new Promise((resolve) => hf.close(resolve));
  await rm(dataDir, { recursive: true, force: true });
});

const unavailableLines = () =>
  entries.filter(
    (e) => e.level === 'warn' && String(e.message).includes('local AI model is unavailable'),
  );

describe('the default model cannot be fetched', () => {
  it('costs one attempt, not one per send: 20 sends fail at once with code "unavailable"', async () => {
    // The attempt made at start has failed once /ready says so (its 2 s deadline may pass first
    // on a busy machine: the attempt loads node-llama-cpp).
    let reason: unknown;
    for (const deadline = Date.now() + 15_000; Date.now() < deadline;) {
      const ready = await server.api.get<Envelope<never>>('/ready');
      expect(ready.status).toBe(503);
      reason = (ready.body.details as { errors: Record<string, string> }).errors['model (local)'];
      if (typeof reason === 'string' && !reason.startsWith('timed out')) break;
    }
    expect(reason).toMatch(/^The local AI model is unavailable: .* could not be downloaded/);
    expect(hfRequests).toHaveLength(1);

    const owner = await registerUser(server.api);
    const conversation = await createConversation(server.api, owner);
    const socket = await connectAs(server.url, owner.accessToken);
    try {
      const sends = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          if (i % 2 === 0) {
            const sent = await server.api.post<Envelope<{ generation: { id: string } }>>(
              `/api/chat/conversations/${conversation.id}/messages`,
              { content: `over REST ${i}` },
              { token: owner.accessToken },
            );
            expect(sent.status).toBe(201);
            return sent.body.data!.generation.id;
          }
          const ack = await request(
            socket.socket,
            'message:send',
            {
              conversationId: conversation.id,
              content: `over the socket ${i}`,
            },
            15_000,
          );
          expect(ack.ok).toBe(true);
          return (ack as { data: { generation: { id: string } } }).data.generation.id;
        }),
      );
      const errors = await Promise.all(
        sends.map(
          (id) =>
            socket.next(
              'ai:error',
              (p) => (p as { generationId: string }).generationId === id,
              15_000,
            ) as Promise<{ code: string; error: string }>,
        ),
      );
      for (const error of errors) {
        expect(error.code).toBe('unavailable');
        expect(error.error).toMatch(
          /^The local AI model is unavailable: .* could not be downloaded/,
        );
      }
      expect(await server.api.get('/ready')).toMatchObject({ status: 503 });
      expect(hfRequests).toHaveLength(1);
      expect(unavailableLines()).toHaveLength(1);
    } finally {
      socket.close();
    }
  });
});
