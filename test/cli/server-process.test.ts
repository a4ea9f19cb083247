// The real entry point as a user runs it: `npm start` on a fresh data directory (timed: the
// project 'start' runs it alone, before the other process suites, which `npm start`'s rebuild of
// dist/ would disturb), restarts, an in-memory database and bad configuration.
import { describe, expect, it } from 'vitest';
import { buildUserInput, type AuthData } from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import {
  cleanUpProcessesAfterEach,
  instance,
  run,
  startNode,
  stop,
  waitForHealth,
} from '../support/server-process.js';

cleanUpProcessesAfterEach();

describe('npm start on a fresh machine', () => {
  it('serves /health within 10 s, and the account and its tokens survive a restart in DATA_DIR', async () => {
    const target = await instance();
    const first = run('npm', ['start', '--silent'], target.env);
    const elapsed = await waitForHealth(target.url, first, 10_000);
    expect(elapsed).toBeLessThan(10_000);

    const input = buildUserInput();
    const registered = await target.api.post<Envelope<AuthData>>('/api/auth/register', input);
    expect(registered.status).toBe(201);

    // npm passes the signal on and, once the server has exited, re-raises it on itself;
    // the server's own clean exit shows in its log.
    await stop(first);
    expect(first.output()).toContain('Shutdown complete');

    const second = await startNode(target);
    const login = await target.api.post<Envelope<AuthData>>('/api/auth/login', {
      email: input.email,
      password: input.password,
    });
    expect(login.status).toBe(200);
    expect(login.body.data!.user.id).toBe(registered.body.data!.user.id);
    // The generated JWT secret was kept in DATA_DIR: a token from the first run still works.
    const me = await target.api.get('/api/auth/me', { token: registered.body.data!.accessToken });
    expect(me.status).toBe(200);
    expect(await stop(second)).toBe(0);
  }, 60_000);
});

describe('DATABASE_URL=memory://', () => {
  it('runs on an in-memory PGlite that keeps nothing across restarts', async () => {
    const target = await instance({ DATABASE_URL: 'memory://' });
    const input = buildUserInput();

    const first = await startNode(target);
    expect(first.output()).toContain('database: pglite, memory');
    expect((await target.api.post('/api/auth/register', input)).status).toBe(201);
    expect(await stop(first)).toBe(0);

    const second = await startNode(target);
    const login = await target.api.post('/api/auth/login', {
      email: input.email,
      password: input.password,
    });
    expect(login.status).toBe(401);
    expect(await stop(second)).toBe(0);
  }, 60_000);
});

describe('bad configuration', () => {
  it('PORT=abc stops with a message naming PORT', async () => {
    const { env } = await instance({ PORT: 'abc' });
    const running = run('node', ['dist/server.js'], env);
    expect(await running.exited).toBe(1);
    expect(running.output()).toMatch(/PORT: /);
  });

  it('NODE_ENV=production without JWT_SECRET refuses to start and says why', async () => {
    const { env } = await instance({ NODE_ENV: 'production' });
    const running = run('node', ['dist/server.js'], env);
    expect(await running.exited).toBe(1);
    expect(running.output()).toMatch(/JWT_SECRET: is required when NODE_ENV=production/);
  });
});
