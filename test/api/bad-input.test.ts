import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUserInput, registerUser } from '../factories.js';
import type { ApiResponse, Envelope } from '../support/api-client.js';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;

beforeAll(async () => {
  // Limits out of the way: this file is about input handling, not throttling.
  server = await startTestServer({
    REGISTER_MAX_PER_IP: '1000000',
    LOGIN_MAX_FAILURES_PER_EMAIL_IP: '1000000',
    LOGIN_MAX_FAILURES_PER_IP: '1000000',
  });
});
afterAll(async () => {
  await server.close();
});

function expectErrorEnvelope(response: ApiResponse<unknown>, status: number, code: string) {
  expect(response.status, response.text).toBe(status);
  expect(response.body).toMatchObject({ success: false, code });
  expect(typeof (response.body as Envelope).error).toBe('string');
}

const json = { 'content-type': 'application/json' };

describe('malformed requests to the auth routes', () => {
  it('answers malformed JSON with 400', async () => {
    for (const raw of ['{"email":', '{email: "a"}', "{'a':1}", '{"a":1}}', 'nul', '\u0000\u0001']) {
      const response = await server.api.post('/api/auth/login', undefined, { raw, headers: json });
      expectErrorEnvelope(response, 400, 'VALIDATION_ERROR');
    }
  });

  it('answers JSON that is not an object with 400', async () => {
    for (const raw of ['[]', '[1,2]', '"text"', '42', 'null', 'true']) {
      const response = await server.api.post('/api/auth/register', undefined, {
        raw,
        headers: json,
      });
      expectErrorEnvelope(response, 400, 'VALIDATION_ERROR');
    }
  });

  it('answers wrong types with 400 naming the field', async () => {
    const response = await server.api.post('/api/auth/register', {
      email: 12345,
      password: ['p', 'w'],
    });
    expectErrorEnvelope(response, 400, 'VALIDATION_ERROR');
    const fields = (response.body as { details: Array<{ path: string }> }).details.map(
      (d) => d.path,
    );
    expect(fields).toEqual(expect.arrayContaining(['email', 'password']));
  });

  it('answers missing fields and an empty body with 400', async () => {
    expectErrorEnvelope(
      await server.api.post('/api/auth/register', { email: 'a@example.test' }),
      400,
      'VALIDATION_ERROR',
    );
    expectErrorEnvelope(await server.api.post('/api/auth/login'), 400, 'VALIDATION_ERROR');
    expectErrorEnvelope(await server.api.post('/api/auth/refresh', {}), 400, 'VALIDATION_ERROR');
  });

  it('answers unknown fields with 400 (a client cannot set its own role)', async () => {
    const response = await server.api.post('/api/auth/register', {
      ...buildUserInput(),
      role: 'ADMIN',
    });
    expectErrorEnvelope(response, 400, 'VALIDATION_ERROR');
    expect(response.text).toContain('role');
  });

  it('answers rule violations with 400: short password, bad email, bad username', async () => {
    for (const body of [
      buildUserInput({ password: 'short' }),
      buildUserInput({ password: 'x'.repeat(129) }),
      buildUserInput({ email: 'not-an-email' }),
      buildUserInput({ username: 'no spaces allowed' }),
      buildUserInput({ username: 'ab' }),
      buildUserInput({ username: 'x'.repeat(33) }),
    ]) {
      expectErrorEnvelope(
        await server.api.post('/api/auth/register', body),
        400,
        'VALIDATION_ERROR',
      );
    }
  });

  it('answers a 1 MB body with 413', async () => {
    const big = JSON.stringify({ email: 'a@example.test', password: 'x'.repeat(1024 * 1024) });
    const response = await server.api.post('/api/auth/login', undefined, {
      raw: big,
      headers: json,
    });
    expectErrorEnvelope(response, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('answers __proto__ and constructor.prototype keys with 400, at any depth', async () => {
    const bodies = [
      '{"email":"a@example.test","password":"password1","__proto__":{"role":"ADMIN"}}',
      '{"email":"a@example.test","password":{"__proto__":{"x":1}}}',
      '{"constructor":{"prototype":{"role":"ADMIN"}},"email":"a@example.test","password":"password1"}',
    ];
    for (const raw of bodies) {
      const response = await server.api.post('/api/auth/register', undefined, {
        raw,
        headers: json,
      });
      expectErrorEnvelope(response, 400, 'VALIDATION_ERROR');
    }
    expect(({} as Record<string, unknown>).role).toBeUndefined();
  });

  it('answers a body that is not JSON with 415', async () => {
    const response = await server.api.post('/api/auth/login', undefined, {
      raw: 'email=a@example.test&password=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expectErrorEnvelope(response, 415, 'UNSUPPORTED_MEDIA_TYPE');
    const plain = await server.api.post('/api/auth/login', undefined, {
      raw: '{"email":"a@example.test","password":"x"}',
      headers: { 'content-type': 'text/plain' },
    });
    expectErrorEnvelope(plain, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers an unsupported charset or encoding with 415', async () => {
    const charset = await server.api.post('/api/auth/login', undefined, {
      raw: '{}',
      headers: { 'content-type': 'application/json; charset=klingon' },
    });
    expectErrorEnvelope(charset, 415, 'UNSUPPORTED_MEDIA_TYPE');
    const encoding = await server.api.post('/api/auth/login', undefined, {
      raw: '{}',
      headers: { ...json, 'content-encoding': 'compress' },
    });
    expectErrorEnvelope(encoding, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers a corrupt gzip body with a 4xx envelope', async () => {
    const response = await server.api.post('/api/auth/login', undefined, {
      raw: 'definitely not gzip',
      headers: { ...json, 'content-encoding': 'gzip' },
    });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    expect(response.body).toMatchObject({ success: false });
  });
});

describe('generated bodies', () => {
  const routes = ['/api/auth/register', '/api/auth/login', '/api/auth/refresh', '/api/auth/logout'];
  const validBodies: Record<string, Record<string, unknown>> = {
    '/api/auth/register': {
      email: 'fuzz@example.test',
      password: 'password-123',
      username: 'fuzzer',
    },
    '/api/auth/login': { email: 'fuzz@example.test', password: 'password-123' },
    '/api/auth/refresh': { refreshToken: 'some-token' },
    '/api/auth/logout': {},
  };

  const weirdValue = fc.oneof(
    fc.jsonValue(),
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.constantFrom(
      '',
      ' ',
      '\u0000',
      '💥'.repeat(200),
      'a'.repeat(5000),
      '$argon2id$',
      '__proto__',
    ),
    fc.integer(),
    fc.double(),
  );

  /** A valid body with one or more fields removed, replaced or added. */
  const mutatedBody = (route: string) =>
    fc
      .array(
        fc.oneof(
          fc.record({
            op: fc.constant('delete' as const),
            key: fc.constantFrom(...Object.keys(validBodies[route]!), 'x'),
          }),
          fc.record({
            op: fc.constant('set' as const),
            key: fc.constantFrom(...Object.keys(validBodies[route]!), 'role', 'id', 'x'),
            value: weirdValue,
          }),
        ),
        { minLength: 1, maxLength: 3 },
      )
      .map((mutations) => {
        const body: Record<string, unknown> = { ...validBodies[route] };
        for (const m of mutations) {
          if (m.op === 'delete') delete body[m.key];
          else body[m.key] = m.value;
        }
        return JSON.stringify(body);
      });

  const randomPayload = fc.oneof(
    fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null'),
    fc.string({ unit: 'binary', maxLength: 500 }),
    fc.string({ maxLength: 200 }).map((s) => `{"email":${s}`),
  );

  const request = fc.record({
    route: fc.constantFrom(...routes),
    kind: fc.constantFrom('mutated', 'mutated', 'random'),
    // Mostly JSON, so most cases get past the content-type check into validation and the services.
    contentType: fc.oneof(
      { arbitrary: fc.constant('application/json'), weight: 12 },
      { arbitrary: fc.constant('application/json; charset=utf-8'), weight: 2 },
      {
        arbitrary: fc.constantFrom(
          'text/plain',
          'application/octet-stream',
          'application/json; charset=latin1',
        ),
        weight: 2,
      },
    ),
    bearer: fc.option(fc.string({ maxLength: 80 }), { nil: undefined }),
    seed: fc.nat(),
  });

  it('sends 600 random and mutated bodies: no 5xx, every answer an envelope, server still up', async () => {
    const cases = fc.sample(request, { numRuns: 600, seed: 20261123 });
    const statuses = new Map<number, number>();
    const queue = [...cases];
    const worker = async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const [raw] =
          c.kind === 'mutated'
            ? fc.sample(mutatedBody(c.route), { numRuns: 1, seed: c.seed })
            : fc.sample(randomPayload, { numRuns: 1, seed: c.seed });
        const headers: Record<string, string> = { 'content-type': c.contentType };
        if (c.bearer !== undefined)
          headers.authorization = `Bearer ${c.bearer.replace(/[\r\n]/g, '')}`;
        let response: ApiResponse<unknown>;
        try {
          response = await server.api.post(c.route, undefined, { raw: raw!, headers });
        } catch (error) {
          // fetch refuses some header values itself; that request never reached the server.
          if (error instanceof TypeError) continue;
          throw error;
        }
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        expect(response.status, `${c.route} ${raw!.slice(0, 200)} → ${response.text}`).toBeLessThan(
          500,
        );
        expect(response.body).toHaveProperty('success');
        if (response.status >= 400) {
          expect(response.body).toMatchObject({
            success: false,
            code: expect.any(String),
            error: expect.any(String),
          });
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const answered = [...statuses.values()].reduce((a, b) => a + b, 0);
    expect(answered).toBeGreaterThanOrEqual(500);
    // Most cases reached validation or the services rather than stopping at the content type.
    expect((statuses.get(400) ?? 0) + (statuses.get(401) ?? 0)).toBeGreaterThan(answered / 2);

    expect((await server.api.get('/health')).status).toBe(200);
    const user = await registerUser(server.api);
    const login = await server.api.post('/api/auth/login', {
      email: user.input.email,
      password: user.input.password,
    });
    expect(login.status).toBe(200);
  }, 120_000);
});
