import { afterEach, describe, expect, it } from 'vitest';
import { buildUserInput, registerUser } from '../factories.js';
import type { ApiResponse } from '../support/api-client.js';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const wrong = (email: string) => ({ email, password: 'definitely-wrong' });

const statuses = (responses: ApiResponse[]) => responses.map((r) => r.status);
const count = (responses: ApiResponse[], status: number) =>
  responses.filter((r) => r.status === status).length;

/** Every refusal is the RATE_LIMITED envelope with a whole-seconds Retry-After. */
function expectRateLimited(responses: ApiResponse[]) {
  for (const response of responses.filter((r) => r.status === 429)) {
    expect(response.body).toMatchObject({ success: false, code: 'RATE_LIMITED' });
    expect(response.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
  }
}

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

// Issue 8, acceptance 1: every attempt is counted before the password is checked, by the
// limiter's atomic consume, so guesses sent together get no more tries than guesses in a row.
describe('login throttling under concurrent guesses', () => {
  it('answers at most 5 of 24 simultaneous wrong passwords for one email, the rest 429; the right one sent after the limit is 429 too', async () => {
    server = await startTestServer();
    const { input } = await registerUser(server.api);
    const api = server.api;

    const guesses = Array.from({ length: 24 }, () =>
      api.post('/api/auth/login', wrong(input.email)),
    );
    // The right password joins the burst once the first refusal shows the limit is reached,
    // while the other guesses may still be in flight.
    const firstRefusal = await Promise.any(
      guesses.map((guess) =>
        guess.then((r) => (r.status === 429 ? r : Promise.reject(new Error(`${r.status}`)))),
      ),
    );
    expect(firstRefusal.status).toBe(429);
    const right = api.post('/api/auth/login', { email: input.email, password: input.password });
    const responses = await Promise.all(guesses);

    expect(count(responses, 401)).toBeLessThanOrEqual(5);
    expect(count(responses, 401) + count(responses, 429), statuses(responses).join()).toBe(24);
    expectRateLimited(responses);
    const rightResponse = await right;
    expect(rightResponse.status).toBe(429);
    expectRateLimited([rightResponse]);
  });

  it('refuses the right password sent in a second wave with more guesses once the limit is reached', async () => {
    server = await startTestServer();
    const { input } = await registerUser(server.api);
    const api = server.api;
    const first = await Promise.all(
      Array.from({ length: 8 }, () => api.post('/api/auth/login', wrong(input.email))),
    );
    expect(count(first, 401)).toBeLessThanOrEqual(5);
    expect(count(first, 429)).toBeGreaterThanOrEqual(3);

    const second = await Promise.all([
      ...Array.from({ length: 4 }, () => api.post('/api/auth/login', wrong(input.email))),
      api.post('/api/auth/login', { email: input.email, password: input.password }),
      ...Array.from({ length: 4 }, () => api.post('/api/auth/login', wrong(input.email))),
    ]);
    expect(statuses(second)).toEqual(second.map(() => 429));
    expectRateLimited(second);
  });

  it('answers at most 100 (the default per IP) of 300 simultaneous wrong logins across emails, the rest 429; then the right password of another account is 429', async () => {
    server = await startTestServer();
    expect(server.config.LOGIN_MAX_FAILURES_PER_IP).toBe(100);
    const { input } = await registerUser(server.api);
    const api = server.api;

    const responses = await Promise.all(
      Array.from({ length: 300 }, () => api.post('/api/auth/login', wrong(buildUserInput().email))),
    );
    expect(count(responses, 401)).toBeLessThanOrEqual(100);
    expect(count(responses, 401) + count(responses, 429)).toBe(300);
    expectRateLimited(responses);

    const right = await api.post('/api/auth/login', {
      email: input.email,
      password: input.password,
    });
    expect(right.status).toBe(429);
  });

  it('gives a successful login its per IP point back: successes never use up the address', async () => {
    server = await startTestServer({ LOGIN_MAX_FAILURES_PER_IP: '3' });
    const api = server.api;
    const users = [await registerUser(api), await registerUser(api)];
    // One after another: an attempt in flight holds its point until its password is checked.
    for (const { input } of [...users, ...users, ...users]) {
      const login = await api.post('/api/auth/login', {
        email: input.email,
        password: input.password,
      });
      expect(login.status).toBe(200);
    }

    const failures = await Promise.all(
      Array.from({ length: 5 }, () => api.post('/api/auth/login', wrong(buildUserInput().email))),
    );
    expect(count(failures, 401)).toBe(3);
    expect(count(failures, 429)).toBe(2);
  });

  it('creates at most REGISTER_MAX_PER_IP accounts from simultaneous registrations, the rest 429', async () => {
    server = await startTestServer({ REGISTER_MAX_PER_IP: '4', REGISTER_WINDOW: '1h' });
    const api = server.api;
    const responses = await Promise.all(
      Array.from({ length: 30 }, () => api.post('/api/auth/register', buildUserInput())),
    );
    expect(count(responses, 201)).toBeLessThanOrEqual(4);
    expect(count(responses, 201) + count(responses, 429), statuses(responses).join()).toBe(30);
    expectRateLimited(responses);
  });
});
