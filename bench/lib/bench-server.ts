// The real app, in this process, against a benchmark database; plus a registered user with a
// conversation to work in.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../src/app.js';
import { parseEnv } from '../../src/config/env.js';
import { createContainer, type Container } from '../../src/container.js';
import type { Database } from '../../src/db/client.js';
import { createRealtimeGateway } from '../../src/realtime/gateway.js';

export interface BenchServer {
  url: string;
  container: Container;
  request<T>(
    method: string,
    path: string,
    body?: unknown,
    token?: string,
  ): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

export async function startBenchServer(
  database: Database,
  env: Record<string, string> = {},
  options: { realtime?: boolean } = {},
): Promise<BenchServer> {
  const parsed = parseEnv({
    LOG_LEVEL: 'error',
    AI_PROVIDER: 'none', // these benchmarks measure messages, not answers
    JWT_SECRET: 'bench-secret-bench-secret-bench-secret-42',
    REGISTER_MAX_PER_IP: '1000000',
    MESSAGE_RATE_LIMIT: '100000000',
    COLLECT_DEFAULT_METRICS: 'false',
    ...env,
  });
  const container = createContainer({ ...parsed, JWT_SECRET: parsed.JWT_SECRET! }, database);
  const server = createServer(createApp(container));
  const gateway = options.realtime ? createRealtimeGateway(server, container) : undefined;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    container,
    async request<T>(method: string, path: string, body?: unknown, token?: string) {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as T };
    },
    close: async () => {
      await gateway?.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Registers a user and creates a conversation for them; returns the token and ids. */
export async function userWithConversation(server: BenchServer, tag: string) {
  const registered = await server.request<{ data: { accessToken: string; user: { id: string } } }>(
    'POST',
    '/api/auth/register',
    {
      email: `${tag}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}@bench.test`,
      password: 'bench-password-1',
    },
  );
  const token = registered.body.data.accessToken;
  const conversation = await server.request<{ data: { id: string } }>(
    'POST',
    '/api/conversations',
    { title: tag },
    token,
  );
  return { token, userId: registered.body.data.user.id, conversationId: conversation.body.data.id };
}
