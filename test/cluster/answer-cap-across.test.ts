// Issue 9: "Fairness and the per-user cap of answers hold cluster-wide". A user's answers running
// or waiting are counted in Redis, so sends split across two instances at once start at most
// AI_MAX_PENDING_PER_USER answers; and with the worker busy, another user's first answer runs
// before the first user's queued ones (their queue priority is their rank among the user's
// answers). Real processes: 2 API instances (WORKERS_INLINE=false) + 1 worker running one answer
// at a time (WORKER_CONCURRENCY=1), AI from the fake upstream.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createConversation, registerUser, type MessageData } from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { useCluster, type ClusterInstance, type ClusterOptions } from '../support/cluster.js';
import { startFakeOpenAi, type FakeOpenAi } from '../support/fake-openai.js';

let fake: FakeOpenAi;
const options: ClusterOptions = {
  instances: 2,
  workers: 1,
  env: { AI_MAX_PENDING_PER_USER: '3' },
  workerEnv: { WORKER_CONCURRENCY: '1' },
};
// The upstream's address is known once it listens; this hook runs before useCluster's.
beforeAll(async () => {
  fake = await startFakeOpenAi();
  options.ai = { baseURL: fake.baseURL };
});
afterAll(async () => {
  await fake?.close();
});
const cluster = useCluster(options);
const A = (): ClusterInstance => cluster().instances[0]!;
const B = (): ClusterInstance => cluster().instances[1]!;

interface Sent {
  message: MessageData;
  generation?: { id: string; messageId: string };
}

function send(instance: ClusterInstance, token: string, conversationId: string, content: string) {
  return instance.api.post<Envelope<Sent>>(
    `/api/chat/conversations/${conversationId}/messages`,
    { content },
    { token },
  );
}

async function waitForRequests(count: number, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (fake.requests.filter((r) => r.completed).length < count) {
    if (Date.now() > deadline) throw new Error(`only ${fake.requests.length} upstream requests`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

it('starts at most 3 answers of one user from 8 sends split across A and B at once; the rest 429, nothing stored for them', async () => {
  fake.fallback = { kind: 'stream', tokens: ['slow', ' answer'], delayMs: 150 };
  const user = await registerUser(A().api);
  const conversation = await createConversation(A().api, user);
  const before = fake.requests.length;
  const sends = await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      send(i % 2 ? B() : A(), user.accessToken, conversation.id, `question ${i}`),
    ),
  );
  const statuses = sends.map((s) => s.status).sort();
  expect(statuses).toEqual([201, 201, 201, 429, 429, 429, 429, 429]);
  for (const refused of sends.filter((s) => s.status === 429))
    expect(refused.headers.get('retry-after')).toBeTruthy();
  const started = sends.filter((s) => s.status === 201);
  expect(started.every((s) => s.body.data!.generation)).toBe(true);
  // Only the three questions were stored, and only their answers asked upstream.
  const page = await B().api.get<Envelope<{ messages: MessageData[] }>>(
    `/api/chat/conversations/${conversation.id}/messages?limit=50`,
    { token: user.accessToken },
  );
  expect(page.body.data!.messages.filter((m) => m.userId === user.user.id)).toHaveLength(3);
  await waitForRequests(before + 3);
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(fake.requests.length - before).toBe(3);
  // The places come back as the answers end: the next send through B starts an answer.
  const deadline = Date.now() + 20_000;
  let again = await send(B(), user.accessToken, conversation.id, 'after the three');
  while (again.status === 429 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    again = await send(B(), user.accessToken, conversation.id, 'after the three');
  }
  expect(again.status).toBe(201);
  expect(again.body.data!.generation).toBeTruthy();
  await waitForRequests(before + 4); // leaves the worker idle for the next test
});

it("runs another user's first answer before the first user's queued ones, across instances", async () => {
  // One answer at a time on the worker; each takes ~400 ms.
  fake.fallback = { kind: 'stream', tokens: ['a', 'b', 'c', 'd'], delayMs: 100 };
  const [heavy, light] = await Promise.all([registerUser(A().api), registerUser(B().api)]);
  const [heavyRoom, lightRoom] = await Promise.all([
    createConversation(A().api, heavy),
    createConversation(B().api, light),
  ]);
  const before = fake.requests.length;
  // The heavy user fills their three places (the first starts at once, two wait)…
  for (const i of [1, 2, 3]) {
    const sent = await send(A(), heavy.accessToken, heavyRoom.id, `heavy ${i}`);
    expect(sent.status).toBe(201);
  }
  // …then the light user asks once, through the other instance.
  const light1 = await send(B(), light.accessToken, lightRoom.id, 'light 1');
  expect(light1.status).toBe(201);
  await waitForRequests(before + 4);
  const order = fake.requests.slice(before).map((r) => r.body.messages.at(-1)!.content);
  // The first heavy answer was running already; the light one goes next, before heavy 2 and 3.
  expect(order[0]).toBe('heavy 1');
  expect(order[1]).toBe('light 1');
  expect(order.slice(2).sort()).toEqual(['heavy 2', 'heavy 3']);
});
