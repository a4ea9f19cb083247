import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { buildUserInput, registerUser, type AuthData } from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { startTestServer, TEST_JWT_SECRET, type TestServer } from '../support/server.js';
import { selectRows } from '../support/sql.js';
import { connectAs } from '../support/sockets.js';

let server: TestServer;
/** Every response body this file receives, to prove no hash ever leaves the server. */
const seenBodies: string[] = [];

beforeAll(async () => {
  server = await startTestServer();
  server.api.onResponse = (response) => seenBodies.push(response.text);
});
afterAll(async () => {
  await server.close();
});

const api = () => server.api;

describe('POST /api/auth/register', () => {
  it('creates the account and returns a token pair without the password hash', async () => {
    const input = buildUserInput();
    const response = await api().post<Envelope<AuthData>>('/api/auth/register', input);
    expect(response.status).toBe(201);
    const data = response.body.data!;
    expect(data.user).toMatchObject({ email: input.email, username: input.username, role: 'USER' });
    expect(data.user).not.toHaveProperty('passwordHash');
    expect(typeof data.accessToken).toBe('string');
    expect(typeof data.refreshToken).toBe('string');
    expect(data.expiresIn).toBe(900);
    const claims = jwt.decode(data.accessToken, { complete: true })!;
    expect(claims.header.alg).toBe('HS256');
    expect(claims.payload).toMatchObject({ sub: data.user.id, userId: data.user.id, role: 'USER' });
    expect(typeof (claims.payload as { sid: unknown }).sid).toBe('string');
  });

  it('stores an argon2id hash, never the password', async () => {
    const { user, input } = await registerUser(api());
    const rows = await selectRows<{ password_hash: string }>(
      server.container.database.db,
      sql`select password_hash from users where id = ${user.id}`,
    );
    expect(rows[0]!.password_hash).toMatch(/^\$argon2id\$v=19\$m=4096,p=1,t=1\$/);
    expect(rows[0]!.password_hash).not.toContain(input.password);
  });

  it('answers 409 for an email already registered, in any letter case', async () => {
    const { input } = await registerUser(api());
    const again = await api().post('/api/auth/register', buildUserInput({ email: input.email }));
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ success: false, code: 'CONFLICT' });
    const shouted = await api().post(
      '/api/auth/register',
      buildUserInput({ email: input.email.toUpperCase() }),
    );
    expect(shouted.status).toBe(409);
  });

  it('answers 409 for a username already taken, in any letter case', async () => {
    const { input } = await registerUser(api());
    const again = await api().post(
      '/api/auth/register',
      buildUserInput({ username: input.username }),
    );
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'CONFLICT', error: 'Username is already taken' });
    const shouted = await api().post(
      '/api/auth/register',
      buildUserInput({ username: input.username!.toUpperCase() }),
    );
    expect(shouted.status).toBe(409);
  });

  it('gives one of two racing registrations of an email 201 and the other 409', async () => {
    const email = buildUserInput().email;
    const results = await Promise.all(
      [1, 2].map(() => api().post('/api/auth/register', buildUserInput({ email }))),
    );
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
  });

  it('accepts an account without a username', async () => {
    const { username: _none, ...input } = buildUserInput();
    const response = await api().post<Envelope<AuthData>>('/api/auth/register', input);
    expect(response.status).toBe(201);
    expect(response.body.data!.user.username).toBeNull();
  });
});

describe('POST /api/auth/login', () => {
  it('logs in with the right password, whatever the email case', async () => {
    const { input, user } = await registerUser(api());
    const response = await api().post<Envelope<AuthData>>('/api/auth/login', {
      email: input.email.toUpperCase(),
      password: input.password,
    });
    expect(response.status).toBe(200);
    expect(response.body.data!.user.id).toBe(user.id);
    expect(response.body.data!.refreshToken).toBeTruthy();
    const lastActive = Date.parse(String(response.body.data!.user.lastActiveAt));
    expect(Date.now() - lastActive).toBeLessThan(5_000);
    expect(lastActive).toBeGreaterThanOrEqual(Date.parse(String(user.lastActiveAt)));
  });

  it('gives the same 401 for an unknown email and a wrong password', async () => {
    const { input } = await registerUser(api());
    const wrongPassword = await api().post('/api/auth/login', {
      email: input.email,
      password: 'not-the-password',
    });
    const unknownEmail = await api().post('/api/auth/login', {
      email: `nobody-${Date.now()}@example.test`,
      password: 'not-the-password',
    });
    expect(wrongPassword.status).toBe(401);
    expect(unknownEmail.status).toBe(401);
    expect(wrongPassword.body).toEqual(unknownEmail.body);
    expect(wrongPassword.body).toEqual({
      success: false,
      error: 'Invalid email or password',
      code: 'UNAUTHORIZED',
    });
  });
});

describe('access tokens', () => {
  const forged = (payload: object, secret: string, options: jwt.SignOptions = {}) =>
    jwt.sign(payload, secret, { issuer: 'parley', ...options });

  it('lets a valid token read /me', async () => {
    const { accessToken, user } = await registerUser(api());
    const me = await api().get<Envelope<AuthData['user']>>('/api/auth/me', { token: accessToken });
    expect(me.status).toBe(200);
    expect(me.body.data).toMatchObject({ id: user.id, email: user.email });
    expect(me.body.data).not.toHaveProperty('passwordHash');
  });

  it('refuses a missing, malformed, alg:none, wrongly signed, wrong-algorithm or expired token', async () => {
    const { accessToken } = await registerUser(api());
    const claims = jwt.decode(accessToken) as Record<string, unknown>;
    const { iat: _iat, exp: _exp, iss: _iss, ...payload } = claims;

    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
    const algNone = `${header}.${body}.`;
    const wrongSignature = forged(payload, 'a-different-secret-of-at-least-32-chars!!');
    const wrongAlgorithm = forged(payload, TEST_JWT_SECRET, { algorithm: 'HS512' });
    const expired = forged(payload, TEST_JWT_SECRET, { expiresIn: -10 });
    const tampered = `${accessToken.split('.')[0]}.${Buffer.from(
      JSON.stringify({ ...claims, role: 'ADMIN' }),
    ).toString('base64url')}.${accessToken.split('.')[2]}`;

    const cases: Array<[string, Record<string, string>]> = [
      ['missing', {}],
      ['not bearer', { authorization: `Basic ${accessToken}` }],
      ['garbage', { authorization: 'Bearer not.a.jwt' }],
      ['alg none', { authorization: `Bearer ${algNone}` }],
      ['wrong signature', { authorization: `Bearer ${wrongSignature}` }],
      ['HS512', { authorization: `Bearer ${wrongAlgorithm}` }],
      ['expired', { authorization: `Bearer ${expired}` }],
      ['tampered payload', { authorization: `Bearer ${tampered}` }],
    ];
    for (const [name, headers] of cases) {
      const response = await api().get('/api/auth/me', { headers });
      expect(response.status, name).toBe(401);
      expect(response.body, name).toMatchObject({ success: false, code: 'UNAUTHORIZED' });
    }
    const expiredResponse = await api().get('/api/auth/me', { token: expired });
    expect(expiredResponse.body).toMatchObject({ error: 'Access token has expired' });
  });

  it('refuses a token of a live session signed without exp, on REST and on sockets', async () => {
    const { accessToken } = await registerUser(api());
    const { sub, userId, sid, role } = jwt.decode(accessToken) as Record<string, unknown>;
    const claims = { sub, userId, sid, role };
    const withExp = forged(claims, TEST_JWT_SECRET, { expiresIn: 60 });
    const withoutExp = forged(claims, TEST_JWT_SECRET);
    expect(jwt.decode(withoutExp)).not.toHaveProperty('exp');

    // The same claims with an expiry pass: only the missing exp is refused.
    expect((await api().get('/api/auth/me', { token: withExp })).status).toBe(200);
    const refused = await api().get('/api/auth/me', { token: withoutExp });
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ code: 'UNAUTHORIZED', error: 'Invalid access token' });

    const socket = await connectAs(server.url, withExp);
    socket.close();
    await expect(connectAs(server.url, withoutExp)).rejects.toThrow('Authentication failed');
  });

  it('refuses a correctly signed token whose session does not exist', async () => {
    const { user } = await registerUser(api());
    const token = forged(
      { sub: user.id, userId: user.id, sid: 'nosuchsession000000000000', role: 'USER' },
      TEST_JWT_SECRET,
      { expiresIn: 60 },
    );
    expect((await api().get('/api/auth/me', { token })).status).toBe(401);
  });
});

describe('POST /api/auth/refresh', () => {
  it('rotates: a new pair works, the old refresh token is refused', async () => {
    const first = await registerUser(api());
    const refreshed = await api().post<Envelope<AuthData>>('/api/auth/refresh', {
      refreshToken: first.refreshToken,
    });
    expect(refreshed.status).toBe(200);
    const second = refreshed.body.data!;
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(second.user.id).toBe(first.user.id);
    expect((await api().get('/api/auth/me', { token: second.accessToken })).status).toBe(200);

    const reused = await api().post('/api/auth/refresh', { refreshToken: first.refreshToken });
    expect(reused.status).toBe(401);
  });

  it('treats reuse of a rotated token as theft: the whole session and its descendants die', async () => {
    const first = await registerUser(api());
    const second = (
      await api().post<Envelope<AuthData>>('/api/auth/refresh', {
        refreshToken: first.refreshToken,
      })
    ).body.data!;
    const third = (
      await api().post<Envelope<AuthData>>('/api/auth/refresh', {
        refreshToken: second.refreshToken,
      })
    ).body.data!;
    expect((await api().get('/api/auth/me', { token: third.accessToken })).status).toBe(200);

    // The attacker replays the first (long rotated) token.
    const replay = await api().post('/api/auth/refresh', { refreshToken: first.refreshToken });
    expect(replay.status).toBe(401);
    expect(replay.body).toMatchObject({ code: 'UNAUTHORIZED' });

    // Every token descended from it is now dead: the newest refresh token and all access tokens.
    expect(
      (await api().post('/api/auth/refresh', { refreshToken: third.refreshToken })).status,
    ).toBe(401);
    expect((await api().get('/api/auth/me', { token: third.accessToken })).status).toBe(401);
    expect((await api().get('/api/auth/me', { token: first.accessToken })).status).toBe(401);
  });

  it('lets only one of two concurrent refreshes with the same token through', async () => {
    const first = await registerUser(api());
    const results = await Promise.all(
      [1, 2].map(() => api().post('/api/auth/refresh', { refreshToken: first.refreshToken })),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses[1]).toBe(401);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(1);
  });

  it('refuses an unknown refresh token', async () => {
    const response = await api().post('/api/auth/refresh', { refreshToken: 'never-issued-token' });
    expect(response.status).toBe(401);
  });

  it('stores only a hash of the refresh token', async () => {
    const { refreshToken, user } = await registerUser(api());
    const rows = await selectRows<{ token: string }>(
      server.container.database.db,
      sql`select token from user_sessions where user_id = ${user.id}`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.token).toMatch(/^[0-9a-f]{64}$/);
    expect(rows[0]!.token).not.toContain(refreshToken);
  });
});

describe('POST /api/auth/logout', () => {
  it('revokes the session at once: its access and refresh tokens are refused', async () => {
    const { accessToken, refreshToken } = await registerUser(api());
    // Warm the session cache, so the check below proves revocation bypasses it.
    expect((await api().get('/api/auth/me', { token: accessToken })).status).toBe(200);
    const logout = await api().post('/api/auth/logout', undefined, { token: accessToken });
    expect(logout.status).toBe(200);
    expect(logout.body).toMatchObject({ success: true, data: { revoked: true } });
    expect((await api().get('/api/auth/me', { token: accessToken })).status).toBe(401);
    expect((await api().post('/api/auth/refresh', { refreshToken })).status).toBe(401);
  });

  it('leaves the user’s other sessions alive', async () => {
    const { input, accessToken } = await registerUser(api());
    const other = (
      await api().post<Envelope<AuthData>>('/api/auth/login', {
        email: input.email,
        password: input.password,
      })
    ).body.data!;
    await api().post('/api/auth/logout', undefined, { token: accessToken });
    expect((await api().get('/api/auth/me', { token: other.accessToken })).status).toBe(200);
  });

  it('requires authentication', async () => {
    expect((await api().post('/api/auth/logout')).status).toBe(401);
  });

  it('publishes session.revoked on the event bus, for the realtime gateway to disconnect sockets', async () => {
    const { accessToken, user } = await registerUser(api());
    const sid = (jwt.decode(accessToken) as { sid: string }).sid;
    const seen: unknown[] = [];
    const unsubscribe = server.container.events.subscribe('session.revoked', (event) => {
      seen.push(event);
    });
    try {
      await api().post('/api/auth/logout', undefined, { token: accessToken });
      await new Promise((resolve) => setImmediate(resolve));
      expect(seen).toEqual([{ sessionId: sid, userId: user.id, reason: 'logout' }]);
    } finally {
      unsubscribe();
    }
  });
});

describe('sessions', () => {
  interface SessionView {
    id: string;
    userAgent: string | null;
    ipAddress: string | null;
    createdAt: string;
    lastUsedAt: string;
    current: boolean;
  }

  it('lists own live sessions with the current one marked', async () => {
    const { input, accessToken } = await registerUser(api());
    await api().post(
      '/api/auth/login',
      { email: input.email, password: input.password },
      { headers: { 'user-agent': 'second-device/1.0' } },
    );
    const list = await api().get<Envelope<SessionView[]>>('/api/auth/sessions', {
      token: accessToken,
    });
    expect(list.status).toBe(200);
    const sessions = list.body.data!;
    expect(sessions).toHaveLength(2);
    expect(sessions.filter((s) => s.current)).toHaveLength(1);
    const other = sessions.find((s) => !s.current)!;
    expect(other.userAgent).toBe('second-device/1.0');
    expect(other.ipAddress).toBeTruthy();
    expect(new Date(other.createdAt).toISOString()).toBe(other.createdAt);
    expect(new Date(other.lastUsedAt).toISOString()).toBe(other.lastUsedAt);
    expect(Object.keys(other)).not.toContain('token');
  });

  it('revokes one of the caller’s sessions, whose access token then fails', async () => {
    const { input, accessToken } = await registerUser(api());
    const second = (
      await api().post<Envelope<AuthData>>('/api/auth/login', {
        email: input.email,
        password: input.password,
      })
    ).body.data!;
    const sid = (jwt.decode(second.accessToken) as { sid: string }).sid;
    expect((await api().get('/api/auth/me', { token: second.accessToken })).status).toBe(200);

    const revoke = await api().delete(`/api/auth/sessions/${sid}`, { token: accessToken });
    expect(revoke.status).toBe(200);
    expect((await api().get('/api/auth/me', { token: second.accessToken })).status).toBe(401);
    const list = await api().get<Envelope<SessionView[]>>('/api/auth/sessions', {
      token: accessToken,
    });
    expect(list.body.data!.map((s) => s.id)).not.toContain(sid);
  });

  it('answers 404 for another user’s session and leaves it alive', async () => {
    const alice = await registerUser(api());
    const bob = await registerUser(api());
    const bobSid = (jwt.decode(bob.accessToken) as { sid: string }).sid;
    const attempt = await api().delete(`/api/auth/sessions/${bobSid}`, {
      token: alice.accessToken,
    });
    expect(attempt.status).toBe(404);
    expect((await api().get('/api/auth/me', { token: bob.accessToken })).status).toBe(200);
  });

  it('answers 400 for a malformed session id', async () => {
    const { accessToken } = await registerUser(api());
    const response = await api().delete('/api/auth/sessions/NOT%20AN%20ID', { token: accessToken });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ code: 'VALIDATION_ERROR' });
  });
});

describe('secrets in responses', () => {
  it('never sent a password hash or a stored token hash in any response of this file', async () => {
    const rows = await selectRows<{ h: string }>(
      server.container.database.db,
      sql`select password_hash as h from users union all select token from user_sessions
          union all select token_hash from rotated_refresh_tokens`,
    );
    expect(rows.length).toBeGreaterThan(10);
    expect(seenBodies.length).toBeGreaterThan(40);
    const everything = seenBodies.join('\n');
    expect(everything).not.toMatch(/password_?hash/i);
    expect(everything).not.toContain('$argon2');
    for (const { h } of rows) expect(everything).not.toContain(h);
  });
});
