// Real server processes for the process tests (test/cli): a port, a data directory and a clean
// environment each, spawned from the repository's dist/ (or `npm start`), killed after each test.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { type AuthData, buildUserInput } from '../factories.js';
import { ApiClient, type Envelope } from './api-client.js';
import { freePort } from './redis-server.js';

const root = path.resolve(import.meta.dirname, '../..');
const children: ChildProcess[] = [];
const dirs: string[] = [];

/** Kills what a test left running and removes its data directories, after each test. */
export function cleanUpProcessesAfterEach(): void {
  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });
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
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  return {
    ...env,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    HF_ENDPOINT: OFFLINE_HF_ENDPOINT,
    ...extra,
  };
}

export interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

export function run(command: string, args: string[], env: NodeJS.ProcessEnv): Running {
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

export async function waitForHealth(
  url: string,
  running: Running,
  deadlineMs: number,
): Promise<number> {
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
export interface Instance {
  port: number;
  url: string;
  api: ApiClient;
  env: NodeJS.ProcessEnv;
}

export async function instance(extra: Record<string, string> = {}): Promise<Instance> {
  const dataDir = await tempDataDir();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = cleanEnv({ DATA_DIR: dataDir, PORT: String(port), ...extra });
  return { port, url, api: new ApiClient(url), env };
}

/** Settings for a server whose AI answers come from the fake OpenAI-compatible upstream. */
export const answeredBy = (fake: { baseURL: string }) => ({
  AI_PROVIDER: 'openai',
  OPENAI_BASE_URL: fake.baseURL,
  OPENAI_API_KEY: 'sk-test',
  AI_TITLES: 'false',
});

/** A registered user of that server and a new conversation of theirs. */
export async function userWithConversation(target: Instance) {
  const user = (await target.api.post<Envelope<AuthData>>('/api/auth/register', buildUserInput()))
    .body.data!;
  const conversation = await target.api.post<Envelope<{ id: string }>>(
    '/api/conversations',
    {},
    { token: user.accessToken },
  );
  return { user, conversationId: conversation.body.data!.id };
}

export async function startNode(target: Instance): Promise<Running> {
  const running = run('node', ['dist/server.js'], target.env);
  await waitForHealth(target.url, running, 15_000);
  return running;
}

export function stop(running: Running): Promise<number | null> {
  running.child.kill('SIGTERM');
  return running.exited;
}
