// Issue 9, acceptance 4: rate limits are the cluster's, not each instance's. A user's message
// budget (MESSAGE_RATE_LIMIT, 30 a minute) and the login failures for one email (5) hold when
// the requests are split across two API instances and sent at once.
import { describe, expect, it } from 'vitest';
import { createConversation, registerUser } from '../factories.js';
import type { ApiResponse } from '../support/api-client.js';
import { useCluster, type ClusterInstance } from '../support/cluster.js';
import { request, type AckResult } from '../support/sockets.js';

const cluster = useCluster({ instances: 2, workers: 1 });
const A = (): ClusterInstance => cluster().instances[0]!;
const B = (): ClusterInstance => cluster().instances[1]!;
/** Alternates A and B. */
const either = (i: number): ClusterInstance => (i % 2 === 0 ? A() : B());

const count = (responses: ApiResponse[], status: number) =>
  responses.filter((r) => r.status === status).length;
const statuses = (responses: ApiResponse[]) => responses.map((r) => r.status).join(',');

/** Every refusal is the RATE_LIMITED envelope with a whole-seconds Retry-After. */
function expectRateLimited(responses: ApiResponse[]) {
  for (const response of responses.filter((r) => r.status === 429)) {
    expect(response.body).toMatchObject({ success: false, code: 'RATE_LIMITED' });
    expect(response.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
  }
}

describe('the message budget spans the cluster', () => {
  it('31 sends by one user, split across A and B at once: exactly one 429', async () => {
    const user = await registerUser(A().api);
    const conversation = await createConversation(A().api, user);
    const responses = await Promise.all(
      Array.from({ length: 31 }, (_, i) =>
        either(i).api.post(
          `/api/chat/conversations/${conversation.id}/messages`,
          { content: `message ${i}` },
          { token: user.accessToken },
        ),
      ),
    );
    expect(count(responses, 201), statuses(responses)).toBe(30);
    expect(count(responses, 429), statuses(responses)).toBe(1);
    expectRateLimited(responses);
  });

  it('REST sends through A and socket sends on B share it: 31 at once, exactly one refused', async () => {
    const user = await registerUser(B().api);
    const conversation = await createConversation(B().api, user);
    const socketOnB = await B().connect(user);
    const rest = Array.from({ length: 16 }, (_, i) =>
      A().api.post(
        `/api/chat/conversations/${conversation.id}/messages`,
        { content: `REST ${i}` },
        { token: user.accessToken },
      ),
    );
    const overSocket = Array.from({ length: 15 }, (_, i) =>
      request(socketOnB.socket, 'message:send', {
        conversationId: conversation.id,
        content: `socket ${i}`,
      }),
    );
    const [responses, acks] = await Promise.all([Promise.all(rest), Promise.all(overSocket)]);
    const refusedAcks = acks.filter(
      (ack: AckResult) => !ack.ok && ack.error.code === 'RATE_LIMITED',
    );
    expect(acks.filter((ack) => !ack.ok && ack.error.code !== 'RATE_LIMITED')).toEqual([]);
    expect(count(responses, 201) + acks.filter((ack) => ack.ok).length).toBe(30);
    expect(count(responses, 429) + refusedAcks.length, statuses(responses)).toBe(1);
    expectRateLimited(responses);
  });
});

describe('login throttling spans the cluster', () => {
  const wrong = (email: string) => ({ email, password: 'definitely-wrong' });

  it('24 wrong passwords for one email split across A and B at once: at most 5 answered 401, the rest 429; then the right password is 429 on both', async () => {
    const { input } = await registerUser(A().api);
    const responses = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        either(i).api.post('/api/auth/login', wrong(input.email)),
      ),
    );
    expect(count(responses, 401), statuses(responses)).toBeLessThanOrEqual(5);
    expect(count(responses, 401) + count(responses, 429), statuses(responses)).toBe(24);
    expectRateLimited(responses);

    const right = { email: input.email, password: input.password };
    const [onA, onB] = await Promise.all([
      A().api.post('/api/auth/login', right),
      B().api.post('/api/auth/login', right),
    ]);
    expect([onA.status, onB.status]).toEqual([429, 429]);
    expectRateLimited([onA, onB]);
  });
});

describe('the socket cap spans the cluster', () => {
  it('SOCKETS_MAX_PER_USER (20): of 26 sockets of one user opened at once across A and B, 20 connect', async () => {
    const user = await registerUser(A().api);
    const attempts = await Promise.allSettled(
      Array.from({ length: 26 }, (_, i) => (i % 2 ? B() : A()).connect(user)),
    );
    const connected = attempts.filter((a) => a.status === 'fulfilled');
    const refused = attempts.filter((a) => a.status === 'rejected');
    expect(connected).toHaveLength(20);
    for (const r of refused) expect(String(r.reason)).toMatch(/Too many connections/);
    // A socket that closes gives its place back, on whichever instance the next one opens.
    (
      connected[0] as PromiseFulfilledResult<Awaited<ReturnType<ClusterInstance['connect']>>>
    ).value.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await expect(B().connect(user)).resolves.toBeTruthy();
    await expect(A().connect(user)).rejects.toThrow(/Too many connections/);
  });
});
