// The real entry point as a user runs it: `npm start` on a fresh data directory, restarts,
// signals and bad configuration. Each test spawns its own process on its own port.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildUserInput, type AuthData } from '../factories.js';
import { ApiClient, type Envelope } from '../support/api-client.js';
import { startFakeHuggingFace } from '../support/fake-hugging-face.js';
import { startFakeOpenAi } from '../support/fake-openai.js';
import { connectAs } from '../support/sockets.js';
import { haveTestModel, skipNote, TEST_MODEL_PATH } from '../support/test-model.js';

const root = path.resolve(import.meta.dirname, '../..');
const children: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function tempDataDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'parley-cli-'));
  dirs.push(dir);
  return dir;
}

/**
 * Where node-llama-cpp resolves `hf:` model URIs: a name that never resolves (RFC 2606), so the
 * default model's download fails as it does on a machine without network, and no test ever
 * pulls 400 MB.
 */
const OFFLINE_HF_ENDPOINT = 'https://huggingface.parley.invalid/';

/** A clean environment: none of the parent's database or secret settings leak in. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  return {
    ...env,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    HF_ENDPOINT: OFFLINE_HF_ENDPOINT,
    ...extra,
  };
}

interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Running {
  const child = spawn(command, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // 'close' waits until every process holding our pipes has gone: npm exits on a signal before
  // the server it started has finished shutting down.
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => resolve(code)),
  );
  return { child, output: () => output, exited };
}

async function waitForHealth(url: string, running: Running, deadlineMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < deadlineMs) {
    if (running.child.exitCode !== null)
      throw new Error(`server exited early:\n${running.output()}`);
    try {
      const response = await fetch(`${url}/health`);
      if (response.ok) return Date.now() - started;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no /health within ${deadlineMs} ms:\n${running.output()}`);
}

/** A port, a data directory and a clean environment for one server process. */
interface Instance {
  port: number;
  url: string;
  api: ApiClient;
  env: NodeJS.ProcessEnv;
}

async function instance(extra: Record<string, string> = {}): Promise<Instance> {
  const dataDir = await tempDataDir();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = cleanEnv({ DATA_DIR: dataDir, PORT: String(port), ...extra });
  return { port, url, api: new ApiClient(url), env };
}

/** Settings for a server whose AI answers come from the fake OpenAI-compatible upstream. */
const answeredBy = (fake: { baseURL: string }) => ({
  AI_PROVIDER: 'openai',
  OPENAI_BASE_URL: fake.baseURL,
  OPENAI_API_KEY: 'sk-test',
  AI_TITLES: 'false',
});

/** A registered user of that server and a new conversation of theirs. */
async function userWithConversation(target: Instance) {
  const user = (await target.api.post<Envelope<AuthData>>('/api/auth/register', buildUserInput()))
    .body.data!;
  const conversation = await target.api.post<Envelope<{ id: string }>>(
    '/api/conversations',
    {},
    { token: user.accessToken },
  );
  return { user, conversationId: conversation.body.data!.id };
}

async function startNode(target: Instance): Promise<Running> {
  const running = run('node', ['dist/server.js'], target.env);
  await waitForHealth(target.url, running, 15_000);
  return running;
}

function stop(running: Running): Promise<number | null> {
  running.child.kill('SIGTERM');
  return running.exited;
}

describe('npm start on a fresh machine', () => {
  it('serves /health within 10 s, and the account and its tokens survive a restart in DATA_DIR', async () => {
    const target = await instance();
    const first = run('npm', ['start', '--silent'], target.env);
    const elapsed = await waitForHealth(target.url, first, 10_000);
    expect(elapsed).toBeLessThan(10_000);

    const input = buildUserInput();
    const registered = await target.api.post<Envelope<AuthData>>('/api/auth/register', input);
    expect(registered.status).toBe(201);

    // npm passes the signal on and, once the server has exited, re-raises it on itself;
    // the server's own clean exit shows in its log.
    await stop(first);
    expect(first.output()).toContain('Shutdown complete');

    const second = await startNode(target);
    const login = await target.api.post<Envelope<AuthData>>('/api/auth/login', {
      email: input.email,
      password: input.password,
    });
    expect(login.status).toBe(200);
    expect(login.body.data!.user.id).toBe(registered.body.data!.user.id);
    // The generated JWT secret was kept in DATA_DIR: a token from the first run still works.
    const me = await target.api.get('/api/auth/me', { token: registered.body.data!.accessToken });
    expect(me.status).toBe(200);
    expect(await stop(second)).toBe(0);
  }, 60_000);
});

describe('DATABASE_URL=memory://', () => {
  it('runs on an in-memory PGlite that keeps nothing across restarts', async () => {
    const target = await instance({ DATABASE_URL: 'memory://' });
    const input = buildUserInput();

    const first = await startNode(target);
    expect(first.output()).toContain('database: pglite, memory');
    expect((await target.api.post('/api/auth/register', input)).status).toBe(201);
    expect(await stop(first)).toBe(0);

    const second = await startNode(target);
    const login = await target.api.post('/api/auth/login', {
      email: input.email,
      password: input.password,
    });
    expect(login.status).toBe(401);
    expect(await stop(second)).toBe(0);
  }, 60_000);
});

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
    await new Promise((resolve) => setTimeout(resolve, 300));
    await expect(fetch(`${url}/health`)).rejects.toThrow();
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
    const fake = await startFakeOpenAi();
    try {
      fake.fallback = {
        kind: 'stream',
        tokens: Array.from({ length: 500 }, (_, i) => ` w${i}`),
        delayMs: 20,
      };
      const target = await instance(answeredBy(fake));
      const first = await startNode(target);
      const { user, conversationId } = await userWithConversation(target);
      const sent = await target.api.post<Envelope<{ generation: { messageId: string } }>>(
        `/api/chat/conversations/${conversationId}/messages`,
        { content: 'Write forever' },
        { token: user.accessToken },
      );
      const answerId = sent.body.data!.generation.messageId;
      await new Promise((resolve) => setTimeout(resolve, 1_500)); // mid-answer
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
    } finally {
      await fake.close();
    }
  }, 60_000);
});

describe('SIGTERM in the middle of an AI answer streamed over SSE', () => {
  it('stops the answer after the grace period, keeps its text, ends the stream and exits 0', async () => {
    const fake = await startFakeOpenAi();
    try {
      fake.fallback = {
        kind: 'stream',
        tokens: Array.from({ length: 1_000 }, (_, i) => ` w${i}`),
        delayMs: 20, // 20 s of answer: longer than the grace period
      };
      const target = await instance(answeredBy(fake));
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
      await new Promise((resolve) => setTimeout(resolve, 1_000));
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
    } finally {
      await fake.close();
    }
  }, 60_000);
});

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

describe('bad configuration', () => {
  it('PORT=abc stops with a message naming PORT', async () => {
    const { env } = await instance({ PORT: 'abc' });
    const running = run('node', ['dist/server.js'], env);
    expect(await running.exited).toBe(1);
    expect(running.output()).toMatch(/PORT: /);
  });

  it('NODE_ENV=production without JWT_SECRET refuses to start and says why', async () => {
    const { env } = await instance({ NODE_ENV: 'production' });
    const running = run('node', ['dist/server.js'], env);
    expect(await running.exited).toBe(1);
    expect(running.output()).toMatch(/JWT_SECRET: is required when NODE_ENV=production/);
  });
});
