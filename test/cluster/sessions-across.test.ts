// Issue 9, acceptance 5: a session ended on one instance is ended on all of them. Logout through
// A disconnects the session's sockets on B within 2 s; a session revoked through A is refused
// by B's REST at once, even though B had just accepted (and cached) it.
import { describe, expect, it } from 'vitest';
import { registerUser, type AuthData, type RegisteredUser } from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { useCluster, type ClusterInstance } from '../support/cluster.js';
import type { RecordingSocket } from '../support/sockets.js';

const cluster = useCluster({ instances: 2, workers: 1 });
const A = (): ClusterInstance => cluster().instances[0]!;
const B = (): ClusterInstance => cluster().instances[1]!;

/** A second session of the same user, logged in through `instance`. */
async function loginAgain(instance: ClusterInstance, user: RegisteredUser): Promise<AuthData> {
  const response = await instance.api.post<Envelope<AuthData>>('/api/auth/login', {
    email: user.input.email,
    password: user.input.password,
  });
  expect(response.status).toBe(200);
  return response.body.data!;
}

/** Resolves with the ms from now until the socket is disconnected. */
const disconnected = (s: RecordingSocket) =>
  new Promise<number>((resolve) => {
    const started = Date.now();
    if (!s.socket.connected) resolve(0);
    s.socket.once('disconnect', () => resolve(Date.now() - started));
  });

const within = <T>(promise: Promise<T>, ms: number, what: string) =>
  Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms),
    ),
  ]);

const me = (instance: ClusterInstance, token: string) =>
  instance.api.get('/api/auth/me', { token });

describe('a session ended through A is ended on B', () => {
  it('logout through A disconnects that session’s socket on B within 2 s, and B’s REST refuses its token at once', async () => {
    const user = await registerUser(A().api);
    const other = await loginAgain(B(), user);
    const [sameOnB, sameOnA, otherOnB] = await Promise.all([
      B().connect(user),
      A().connect(user),
      B().connect(other),
    ]);
    // B has accepted (and may have cached) the session before it ends.
    expect((await me(B(), user.accessToken)).status).toBe(200);

    const gone = Promise.all([disconnected(sameOnB), disconnected(sameOnA)]);
    const logout = await A().api.post('/api/auth/logout', undefined, { token: user.accessToken });
    expect(logout.status).toBe(200);
    expect((await me(B(), user.accessToken)).status).toBe(401);

    const [onB, onA] = await within(gone, 2_000, 'the disconnects');
    expect(onB).toBeLessThan(2_000);
    expect(onA).toBeLessThan(2_000);
    // Only that session: the user's other session keeps its socket and its REST access.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(otherOnB.socket.connected).toBe(true);
    expect((await me(B(), other.accessToken)).status).toBe(200);
  });

  it('a session revoked through A (DELETE /api/auth/sessions/:id) is refused by B’s REST on the next request, its socket on B is cut within 2 s, and B refuses a new socket for it', async () => {
    const user = await registerUser(A().api);
    const phone = await loginAgain(B(), user);
    const phoneOnB = await B().connect(phone);
    expect((await me(B(), phone.accessToken)).status).toBe(200);

    const sessions = await A().api.get<Envelope<Array<{ id: string; current: boolean }>>>(
      '/api/auth/sessions',
      { token: user.accessToken },
    );
    expect(sessions.status).toBe(200);
    const phoneSession = sessions.body.data!.find((s) => !s.current);
    expect(sessions.body.data).toHaveLength(2);

    const gone = disconnected(phoneOnB);
    const revoked = await A().api.delete(`/api/auth/sessions/${phoneSession!.id}`, {
      token: user.accessToken,
    });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ data: { sessionId: phoneSession!.id, revoked: true } });

    const refused = await me(B(), phone.accessToken);
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ success: false, code: 'UNAUTHORIZED' });
    expect(await within(gone, 2_000, 'the disconnect')).toBeLessThan(2_000);
    await expect(B().connect(phone)).rejects.toThrow('Authentication failed');
    // The session that revoked it is untouched, on either instance.
    expect((await me(B(), user.accessToken)).status).toBe(200);
  });
});
