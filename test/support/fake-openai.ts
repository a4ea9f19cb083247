// A stand-in for OpenAI's servers (the one boundary these tests cannot reach), speaking the real
// chat-completions wire format: `data: {chat.completion.chunk}` lines, a usage chunk when
// `stream_options.include_usage` is set, then `data: [DONE]`. Each request takes the next
// scripted behaviour; the server records what it was sent and whether the client hung up.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Behaviour =
  | {
      kind: 'stream';
      tokens: string[];
      delayMs?: number;
      firstDelayMs?: number;
      usage?: { prompt: number; completion: number };
    }
  | { kind: 'fail-midway'; tokens: string[]; delayMs?: number }
  | {
      kind: 'status';
      status: number;
      retryAfterMs?: number;
      /** The error body as sent (default: an OpenAI-style JSON error saying `fake <status>`). */
      body?: { contentType: string; text: string };
    }
  | { kind: 'hang' };

/** A part of a message's content as chat-completions takes it (text, or an image's data URL). */
export type RecordedPart =
  | { type: 'text'; text: string }
  | { type: 'image_url'; image_url: { url: string; detail?: string } };

export interface RecordedRequest {
  body: {
    model: string;
    messages: Array<{ role: string; content: string | RecordedPart[] }>;
    stream: boolean;
    stream_options?: { include_usage?: boolean };
    max_tokens?: number;
    temperature?: number;
  };
  /** True when the client closed the connection before the answer was complete. */
  clientHungUp: boolean;
  /** When the client hung up (the clock of `receivedAt`), if it did before the answer was complete. */
  hungUpAt?: number;
  completed: boolean;
  /** When the request arrived and its first token was written (ms since the epoch, sub-ms). */
  receivedAt: number;
  firstTokenAt?: number;
}

export interface FakeOpenAi {
  baseURL: string;
  requests: RecordedRequest[];
  /** Behaviours for the next requests, in order; when empty, `fallback` answers. */
  script: Behaviour[];
  fallback: Behaviour;
  close(): Promise<void>;
}

const chunk = (delta: object, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1, model: 'fake-model', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

/** A clock two processes on one machine share (benchmarks compare across processes). */
const clock = () => performance.timeOrigin + performance.now();

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startFakeOpenAi(): Promise<FakeOpenAi> {
  const fake: Omit<FakeOpenAi, 'baseURL' | 'close'> = {
    requests: [],
    script: [],
    fallback: { kind: 'stream', tokens: ['Hello', ' there', '!'] },
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => void answer(req, res, raw));
  });

  async function answer(req: IncomingMessage, res: ServerResponse, raw: string) {
    if (req.url !== '/v1/chat/completions') {
      res.writeHead(404).end();
      return;
    }
    const record: RecordedRequest = {
      body: JSON.parse(raw) as RecordedRequest['body'],
      clientHungUp: false,
      completed: false,
      receivedAt: clock(),
    };
    fake.requests.push(record);
    res.on('close', () => {
      if (record.completed) return;
      record.clientHungUp = true;
      record.hungUpAt = clock();
    });
    const behaviour = fake.script.shift() ?? fake.fallback;
    if (behaviour.kind === 'hang') return; // never answers
    if (behaviour.kind === 'status') {
      res.writeHead(behaviour.status, {
        'content-type': behaviour.body?.contentType ?? 'application/json',
        ...(behaviour.retryAfterMs === undefined
          ? {}
          : { 'retry-after-ms': String(behaviour.retryAfterMs) }),
      });
      res.end(
        behaviour.body?.text ??
          JSON.stringify({
            error: { message: `fake ${behaviour.status}`, type: 'fake', code: null },
          }),
      );
      record.completed = true;
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(chunk({ role: 'assistant', content: '' }));
    const delay = behaviour.delayMs ?? 1;
    let first = true;
    for (const token of behaviour.tokens) {
      await wait(
        first && behaviour.kind === 'stream' && behaviour.firstDelayMs !== undefined
          ? behaviour.firstDelayMs
          : delay,
      );
      first = false;
      if (res.destroyed || record.clientHungUp) return;
      res.write(chunk({ content: token }));
      record.firstTokenAt ??= clock();
    }
    if (behaviour.kind === 'fail-midway') {
      // The connection breaks off mid-answer, as an overloaded upstream's does (after the tokens
      // above have reached the client).
      await wait(50);
      res.destroy();
      return;
    }
    res.write(chunk({}, 'stop'));
    if (record.body.stream_options?.include_usage) {
      const usage = behaviour.usage ?? { prompt: 11, completion: behaviour.tokens.length };
      res.write(
        `data: ${JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1, model: 'fake-model', choices: [], usage: { prompt_tokens: usage.prompt, completion_tokens: usage.completion, total_tokens: usage.prompt + usage.completion } })}\n\n`,
      );
    }
    res.write('data: [DONE]\n\n');
    record.completed = true;
    res.end();
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(fake, {
    baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  });
}
