// A started server whose AI provider is the fake OpenAI-compatible upstream, and a send that
// starts an answer: what the AI test files share.
import type { MessageData, RegisteredUser } from '../factories.js';
import type { Envelope } from './api-client.js';
import { startFakeOpenAi, type FakeOpenAi } from './fake-openai.js';
import type { ContainerOptions } from '../../src/container.js';
import { startTestServer, type TestServer } from './server.js';

export interface FakeAiServer {
  fake: FakeOpenAi;
  server: TestServer;
  url: string;
  close(): Promise<void>;
}

/** The server answers with the `openai` provider against a fresh fake upstream. */
export async function startFakeAiServer(
  env: Record<string, string> = {},
  options: ContainerOptions = {},
): Promise<FakeAiServer> {
  const fake = await startFakeOpenAi();
  const server = await startTestServer(
    {
      AI_PROVIDER: 'openai',
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_API_KEY: 'sk-test',
      AI_MODEL: 'fake-model',
      AI_TITLES: 'false',
      MESSAGE_RATE_LIMIT: '100000',
      ...env,
    },
    options,
  );
  return {
    fake,
    server,
    url: server.url,
    close: async () => {
      await server.close();
      await fake.close();
    },
  };
}

/** Sends a message over REST; the answer it started is `generation`. */
export async function sendForAnswer(
  server: TestServer,
  user: RegisteredUser,
  conversationId: string,
  content: string,
) {
  const sent = await server.api.post<
    Envelope<{ message: MessageData; generation: { id: string; messageId: string } }>
  >(`/api/chat/conversations/${conversationId}/messages`, { content }, { token: user.accessToken });
  return sent.body.data!;
}
