// Issue 4, acceptance 5: the handshake, and sessions ending on sockets — logout and revoke
// disconnect within 2 s; expired or revoked tokens are refused; expiry is enforced live.
import jwt from 'jsonwebtoken';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, type AuthData, type RegisteredUser } from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { startTestServer, TEST_JWT_SECRET, type TestServer } from '../support/server.js';
import { request, socketSuite, type RecordingSocket } from '../support/sockets.js';

let server: TestServer;
const sockets = socketSuite(
  { beforeAll, afterEach, afterAll },
  async () => (server = await startTestServer()),
);

const connect = (token: string | undefined, viaHeader = false, target: { url: string } = server) =>
  sockets.connect({ accessToken: token }, { viaHeader }, target.url);

/** A second session for the same user. */
const loginAgain = async (user: RegisteredUser) =>
  (
    await server.api.post<Envelope<AuthData>>('/api/auth/login', {
      email: user.input.email,
      password: user.input.password,
    })
  ).body.data!;

const disconnected = (s: RecordingSocket) =>
  new Promise<number>((resolve) => {
    const started = Date.now();
    if (!s.socket.connected) resolve(0);
    s.socket.once('disconnect', () => resolve(Date.now() - started));
  });

describe('handshake', () => {
  it('accepts a token in auth.token or in the Authorization header', async () => {
    const user = await registerUser(server.api);
    expect((await connect(user.accessToken)).socket.connected).toBe(true);
    expect((await connect(user.accessToken, true)).socket.connected).toBe(true);
  });

  it('refuses a missing token with "Authentication token required"', async () => {
    await expect(connect(undefined)).rejects.toThrow('Authentication token required');
  });

  it('refuses bad, forged, expired and revoked tokens with "Authentication failed"', async () => {
    const user = await registerUser(server.api);
    const claims = jwt.decode(user.accessToken) as Record<string, unknown>;
    const { iat: _i, exp: _e, iss: _s, ...payload } = claims;
    const expired = jwt.sign(payload, TEST_JWT_SECRET, { issuer: 'parley', expiresIn: -5 });
    const forged = jwt.sign(payload, 'another-secret-of-at-least-thirty-two-chars', {
      issuer: 'parley',
      expiresIn: 60,
    });
    for (const token of ['garbage', forged, expired]) {
      await expect(connect(token), token.slice(0, 20)).rejects.toThrow('Authentication failed');
    }
    const revoked = await registerUser(server.api);
    await server.api.post('/api/auth/logout', undefined, { token: revoked.accessToken });
    await expect(connect(revoked.accessToken)).rejects.toThrow('Authentication failed');
  });
});

describe('sessions ending', () => {
  it('logout disconnects that session’s sockets within 2 seconds, and only that session’s', async () => {
    const user = await registerUser(server.api);
    const second = await loginAgain(user);
    const [a, b, other] = await Promise.all([
      connect(user.accessToken),
      connect(user.accessToken),
      connect(second.accessToken),
    ]);
    const gone = Promise.all([disconnected(a), disconnected(b)]);
    const logout = await server.api.post('/api/auth/logout', undefined, {
      token: user.accessToken,
    });
    expect(logout.status).toBe(200);
    const times = await gone;
    for (const ms of times) expect(ms).toBeLessThan(2_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(other.socket.connected).toBe(true);
  });

  it('revoking a session from the session list disconnects its sockets', async () => {
    const user = await registerUser(server.api);
    const second = await loginAgain(user);
    const socket = await connect(second.accessToken);
    const sid = (jwt.decode(second.accessToken) as { sid: string }).sid;
    const gone = disconnected(socket);
    await server.api.delete(`/api/auth/sessions/${sid}`, { token: user.accessToken });
    expect(await gone).toBeLessThan(2_000);
  });

  it('refresh-token reuse (a stolen token) disconnects the session’s sockets', async () => {
    const user = await registerUser(server.api);
    await server.api.post('/api/auth/refresh', { refreshToken: user.refreshToken });
    const socket = await connect(user.accessToken);
    const gone = disconnected(socket);
    await server.api.post('/api/auth/refresh', { refreshToken: user.refreshToken });
    expect(await gone).toBeLessThan(2_000);
  });
});

describe('access-token expiry on a live socket', () => {
  let shortLived: TestServer;
  beforeAll(async () => {
    shortLived = await startTestServer({ JWT_ACCESS_TTL: '2s' });
  });
  afterAll(async () => {
    await shortLived.close();
  });

  it('says auth:expired and disconnects when the token runs out', async () => {
    const user = await registerUser(shortLived.api);
    const socket = await connect(user.accessToken, false, shortLived);
    const gone = disconnected(socket);
    expect(await socket.next('auth:expired', undefined, 4_000)).toMatchObject({
      message: expect.any(String),
    });
    const ms = await gone;
    expect(ms).toBeLessThan(4_000);
  });

  it('stays connected past expiry after auth:refresh with a fresh token of the same session', async () => {
    const user = await registerUser(shortLived.api);
    const socket = await connect(user.accessToken, false, shortLived);
    // JWT times are whole seconds. Refresh once the clock is a second past the first token's
    // `iat` (so the fresh token's `exp` is at least a second later), then look just after the
    // first token's `exp`: the fresh one still has most of a second to run.
    const { iat, exp } = JSON.parse(
      Buffer.from(user.accessToken.split('.')[1]!, 'base64url').toString(),
    ) as { iat: number; exp: number };
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, (iat + 1) * 1000 + 50 - Date.now())),
    );
    const fresh = (
      await shortLived.api.post<Envelope<AuthData>>('/api/auth/refresh', {
        refreshToken: user.refreshToken,
      })
    ).body.data!;
    const ack = await request(socket.socket, 'auth:refresh', { token: fresh.accessToken });
    expect(ack).toMatchObject({ ok: true, data: { expiresAt: expect.any(String) } });
    const pastExpiry = exp * 1000 + 300 - Date.now();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, pastExpiry)));
    expect(socket.socket.connected).toBe(true);
    expect(socket.of('auth:expired')).toEqual([]);
  });

  it('refuses auth:refresh with someone else’s token or garbage', async () => {
    const [user, other] = await Promise.all([
      registerUser(shortLived.api),
      registerUser(shortLived.api),
    ]);
    const socket = await connect(user.accessToken, false, shortLived);
    expect(
      await request(socket.socket, 'auth:refresh', { token: other.accessToken }),
    ).toMatchObject({
      ok: false,
      error: { code: 'UNAUTHORIZED' },
    });
    expect(await request(socket.socket, 'auth:refresh', { token: 'nonsense' })).toMatchObject({
      ok: false,
      error: { code: 'UNAUTHORIZED' },
    });
  });
});
