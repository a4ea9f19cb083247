import { afterEach, describe, expect, it } from 'vitest';
import { buildUserInput, registerUser } from '../factories.js';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const wrong = (email: string) => ({ email, password: 'definitely-wrong' });

describe('login throttling (SPEC §8)', () => {
  it('refuses the 6th attempt after 5 failures for one email+IP with 429 and Retry-After, even with the right password', async () => {
    server = await startTestServer();
    const { input } = await registerUser(server.api);
    for (let i = 0; i < 5; i++) {
      expect((await server.api.post('/api/auth/login', wrong(input.email))).status).toBe(401);
    }
    const blocked = await server.api.post('/api/auth/login', {
      email: input.email,
      password: input.password,
    });
    expect(blocked.status).toBe(429);
    expect(blocked.body).toMatchObject({ success: false, code: 'RATE_LIMITED' });
    const retryAfter = Number(blocked.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(800);
    expect(retryAfter).toBeLessThanOrEqual(15 * 60);

    // Another account from the same address is not locked by it.
    const other = await registerUser(server.api);
    const ok = await server.api.post('/api/auth/login', {
      email: other.input.email,
      password: other.input.password,
    });
    expect(ok.status).toBe(200);
  });

  it('forgets earlier failures after a successful login', async () => {
    server = await startTestServer();
    const { input } = await registerUser(server.api);
    for (let i = 0; i < 4; i++) await server.api.post('/api/auth/login', wrong(input.email));
    expect(
      (await server.api.post('/api/auth/login', { email: input.email, password: input.password }))
        .status,
    ).toBe(200);
    for (let i = 0; i < 4; i++) {
      expect((await server.api.post('/api/auth/login', wrong(input.email))).status).toBe(401);
    }
  });

  it('limits failures per IP across emails (tunable: LOGIN_MAX_FAILURES_PER_IP)', async () => {
    server = await startTestServer({ LOGIN_MAX_FAILURES_PER_IP: '3' });
    for (let i = 0; i < 3; i++) {
      const response = await server.api.post('/api/auth/login', wrong(buildUserInput().email));
      expect(response.status).toBe(401);
    }
    const blocked = await server.api.post('/api/auth/login', wrong(buildUserInput().email));
    expect(blocked.status).toBe(429);
    expect(blocked.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  it('limits registrations per IP (tunable: REGISTER_MAX_PER_IP)', async () => {
    server = await startTestServer({ REGISTER_MAX_PER_IP: '2', REGISTER_WINDOW: '1h' });
    await registerUser(server.api);
    await registerUser(server.api);
    const third = await server.api.post('/api/auth/register', buildUserInput());
    expect(third.status).toBe(429);
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(3500);
  });
});
