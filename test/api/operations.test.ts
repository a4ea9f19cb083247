import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser } from '../factories.js';
import { capturingLogger } from '../support/logs.js';
import { startTestServer, type TestServer } from '../support/server.js';

describe('operations endpoints', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ COLLECT_DEFAULT_METRICS: 'true' });
  });
  afterAll(async () => {
    await server.close();
  });

  it('GET /health answers without touching anything', async () => {
    const response = await server.api.get('/health');
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ success: true, data: { status: 'ok' } });
  });

  it('GET /ready checks the database', async () => {
    const response = await server.api.get('/ready');
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ success: true, data: { checks: { database: 'ok' } } });
  });

  it('GET /metrics has default process metrics and request durations by route and status', async () => {
    await server.api.post('/api/auth/login', {
      email: 'nobody@example.test',
      password: 'whatever-it-is',
    });
    await server.api.get('/no/such/route/abc123');
    const response = await server.api.get<string>('/metrics');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    expect(response.text).toContain('process_cpu_user_seconds_total');
    expect(response.text).toMatch(
      /http_request_duration_seconds_bucket\{[^}]*method="POST",route="\/api\/auth\/login",status_code="401"/,
    );
    expect(response.text).toMatch(/route="unmatched",status_code="404"/);
    // Raw paths never become labels.
    expect(response.text).not.toContain('abc123');
  });

  it('answers unknown routes with a JSON 404 envelope', async () => {
    for (const [method, path] of [
      ['GET', '/nope'],
      ['DELETE', '/api/auth/login'],
      ['PUT', '/api/auth/me'],
    ] as const) {
      const response = await server.api.request(method, path);
      expect(response.status).toBe(404);
      expect(response.body).toMatchObject({ success: false, code: 'NOT_FOUND' });
    }
  });

  it('gives every response a request id, keeping a sane one the client sent', async () => {
    const generated = await server.api.get('/health');
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const kept = await server.api.get('/health', { headers: { 'x-request-id': 'client-id-42' } });
    expect(kept.headers.get('x-request-id')).toBe('client-id-42');
    const replaced = await server.api.get('/health', {
      headers: { 'x-request-id': 'bad id <script>' },
    });
    expect(replaced.headers.get('x-request-id')).not.toContain('script');
  });

  it('sends helmet security headers', async () => {
    const response = await server.api.get('/health');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(response.headers.get('strict-transport-security')).toContain('max-age');
    expect(response.headers.get('x-powered-by')).toBeNull();
  });

  it('allows CORS only from FRONTEND_URL', async () => {
    const allowed = await server.api.request('OPTIONS', '/api/auth/login', undefined, {
      headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'POST' },
    });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
    const refused = await server.api.get('/health', {
      headers: { origin: 'https://evil.example' },
    });
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('metrics token', () => {
  it('guards /metrics with METRICS_TOKEN when set', async () => {
    const server = await startTestServer({ METRICS_TOKEN: 'metrics-secret-token' });
    try {
      expect((await server.api.get('/metrics')).status).toBe(401);
      expect((await server.api.get('/metrics', { token: 'wrong' })).status).toBe(401);
      const ok = await server.api.get('/metrics', { token: 'metrics-secret-token' });
      expect(ok.status).toBe(200);
      expect(ok.text).toContain('http_request_duration_seconds');
    } finally {
      await server.close();
    }
  });
});

describe('when the database is gone', () => {
  it('/ready answers 503 naming the database, /health stays up, requests get a 500 with a request id and no internals', async () => {
    const { logger, entries } = capturingLogger();
    const server = await startTestServer({}, { logger });
    try {
      const user = await registerUser(server.api);
      await server.container.database.close();

      const ready = await server.api.get('/ready');
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({
        success: false,
        code: 'UNAVAILABLE',
        error: expect.stringContaining('database'),
        details: { checks: { database: 'fail' }, errors: { database: 'unavailable' } },
      });
      // The driver's own words go to the log, not to whoever asks /ready.
      expect(entries).toContainEqual(
        expect.objectContaining({
          level: 'warn',
          message: expect.stringContaining('Readiness check "database" failed') as unknown,
        }),
      );
      expect((await server.api.get('/health')).status).toBe(200);

      const login = await server.api.post(
        '/api/auth/login',
        { email: user.input.email, password: user.input.password },
        { headers: { 'x-request-id': 'req-db-down' } },
      );
      expect(login.status).toBe(500);
      expect(login.body).toMatchObject({
        success: false,
        code: 'INTERNAL',
        requestId: 'req-db-down',
      });
      expect(login.text).not.toMatch(/at .*\.ts|select|insert/i);

      const errorLine = entries.find((e) => e.level === 'error');
      expect(errorLine).toMatchObject({ requestId: 'req-db-down' });
      // Secrets the failed query carried are not in the log.
      expect(JSON.stringify(entries)).not.toContain(user.input.password);
      expect(JSON.stringify(entries)).not.toContain('$argon2');
    } finally {
      await server.close().catch(() => {});
    }
  });
});

describe('logging', () => {
  it('writes one access line per request carrying its request id, without query strings or bodies', async () => {
    const { logger, entries } = capturingLogger();
    const server = await startTestServer({}, { logger });
    try {
      const user = await registerUser(server.api);
      await server.api.get('/api/auth/me?token=secret-in-query', {
        token: user.accessToken,
        headers: { 'x-request-id': 'req-log-1' },
      });
      const line = entries.find((e) => e.requestId === 'req-log-1');
      expect(line).toMatchObject({ level: 'http', route: '/api/auth/me' });
      expect(String(line!.message)).toContain('GET /api/auth/me 200');
      const all = JSON.stringify(entries);
      expect(all).not.toContain('secret-in-query');
      expect(all).not.toContain(user.input.password);
      expect(all).not.toContain(user.accessToken);
      expect(all).not.toContain(user.refreshToken);
    } finally {
      await server.close();
    }
  });
});
