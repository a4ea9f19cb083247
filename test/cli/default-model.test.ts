// A real server process without AI_MODEL_PATH: the default model is downloaded into DATA_DIR on
// the first start (from a Hugging Face stand-in), or, without network, named as unavailable.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../support/api-client.js';
import { startFakeHuggingFace } from '../support/fake-hugging-face.js';
import {
  cleanUpProcessesAfterEach,
  instance,
  startNode,
  stop,
  userWithConversation,
} from '../support/server-process.js';
import { connectAs } from '../support/sockets.js';
import { haveTestModel, skipNote, TEST_MODEL_PATH } from '../support/test-model.js';

cleanUpProcessesAfterEach();

describe('no AI_MODEL_PATH: the default model', () => {
  it.skipIf(!haveTestModel)(
    `is downloaded into DATA_DIR/models on the first start while /ready says how far along, then answers; a restart reuses the file${skipNote}`,
    async () => {
      // The real default URI, resolved against a Hugging Face stand-in serving the tiny test
      // model's bytes over three seconds.
      const hf = await startFakeHuggingFace({
        repo: 'bartowski/Qwen2.5-0.5B-Instruct-GGUF',
        quant: 'Q4_K_M',
        fileName: 'Qwen2.5-0.5B-Instruct-Q4_K_M.gguf',
        modelPath: TEST_MODEL_PATH,
        sendMs: 3_000,
      });
      try {
        const target = await instance({
          HF_ENDPOINT: hf.url,
          AI_LOCAL_THREADS: '1',
          AI_MAX_OUTPUT_TOKENS: '24',
          AI_TITLES: 'false',
        });
        const first = await startNode(target);
        // A question asked while the model downloads waits for it, then gets its answer.
        const { user, conversationId } = await userWithConversation(target);
        const socket = await connectAs(target.url, user.accessToken);
        try {
          await target.api.post(
            `/api/chat/conversations/${conversationId}/messages`,
            { content: 'Once upon a time' },
            { token: user.accessToken },
          );
          const readiness: string[] = [];
          let ready = false;
          for (const started = Date.now(); !ready && Date.now() - started < 30_000;) {
            const response = await fetch(`${target.url}/ready`);
            ready = response.status === 200;
            readiness.push(JSON.stringify(await response.json()));
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
          expect(ready).toBe(true);
          expect(
            readiness.some((r) =>
              /downloading hf:bartowski\/Qwen2\.5-0\.5B-Instruct-GGUF:Q4_K_M \(\d+%\)/.test(r),
            ),
          ).toBe(true);
          expect(first.output()).toMatch(
            /Downloading hf:bartowski\/Qwen2\.5-0\.5B-Instruct-GGUF:Q4_K_M into /,
          );
          const files = await readdir(path.join(target.env.DATA_DIR!, 'models'));
          expect(files.some((name) => name.endsWith('.gguf'))).toBe(true);

          const end = (await socket.next('ai:stream:end', undefined, 20_000)) as { status: string };
          expect(end.status).toBe('SENT');
          expect(socket.of('ai:stream:delta').length).toBeGreaterThan(0);
        } finally {
          socket.socket.disconnect();
        }
        expect(await stop(first)).toBe(0);

        // The second start finds the file: no download, ready at once.
        const downloads = hf.downloads;
        const second = await startNode(target);
        let secondReady = 0;
        for (let tries = 0; secondReady !== 200 && tries < 50; tries++) {
          secondReady = (await fetch(`${target.url}/ready`)).status;
          if (secondReady !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(secondReady).toBe(200);
        expect(hf.downloads).toBe(downloads);
        expect(await stop(second)).toBe(0);
      } finally {
        await hf.close();
      }
    },
    90_000,
  );
});

describe('no AI_MODEL_PATH and no network', () => {
  it('still serves; /ready names the model as unavailable, a send gets an ai:error saying how to configure one, and more sends try no new download', async () => {
    const target = await instance(); // AI_PROVIDER defaults to local; the default model is fetched
    const server = await startNode(target);

    let ready = await fetch(`${target.url}/ready`);
    for (let tries = 0; ready.status !== 503 && tries < 50; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      ready = await fetch(`${target.url}/ready`);
    }
    expect(ready.status).toBe(503);
    const readiness = JSON.stringify(await ready.json());
    expect(readiness).toContain('model (local)');
    expect(readiness).toMatch(/local AI model is unavailable/);
    expect(readiness).toContain('Qwen2.5-0.5B-Instruct');
    expect(server.output()).toMatch(/local AI model is unavailable/);

    const { user, conversationId } = await userWithConversation(target);
    const socket = await connectAs(target.url, user.accessToken);
    try {
      const sent = await target.api.post<
        Envelope<{ message: { status: string }; generation: { id: string; messageId: string } }>
      >(
        `/api/chat/conversations/${conversationId}/messages`,
        { content: 'Hello?' },
        { token: user.accessToken },
      );
      // The user's message itself is kept; only the answer fails.
      expect(sent.status).toBe(201);
      expect(sent.body.data!.message.status).toBe('SENT');
      const error = (await socket.next('ai:error', undefined, 10_000)) as {
        generationId: string;
        error: string;
      };
      expect(error.generationId).toBe(sent.body.data!.generation.id);
      expect(error.error).toMatch(/Set AI_MODEL_PATH to a GGUF file/);
      expect(error.error).toMatch(/OPENAI_BASE_URL/);
      // Within the minute, further sends fail the same way without a download attempt of their
      // own: the log still has the one failure, from the attempt at start.
      for (let i = 0; i < 5; i++) {
        const again = await target.api.post<Envelope<{ generation: { id: string } }>>(
          `/api/chat/conversations/${conversationId}/messages`,
          { content: `Again ${i}` },
          { token: user.accessToken },
        );
        const id = again.body.data!.generation.id;
        await socket.next('ai:error', (p) => (p as { generationId: string }).generationId === id);
      }
      expect(server.output().match(/local AI model is unavailable/g)).toHaveLength(1);
      // The server is still there and answers the next request.
      expect((await fetch(`${target.url}/health`)).status).toBe(200);
    } finally {
      socket.socket.disconnect();
    }
    expect(await stop(server)).toBe(0);
  }, 60_000);
});
