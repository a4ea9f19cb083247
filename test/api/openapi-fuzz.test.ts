// Issue 3, acceptance 6: requests generated from /openapi.json — every operation, with valid,
// mutated and random bodies, params and queries — as a real user and as an outsider. No 5xx, the
// process keeps answering, and nothing of the victim's conversation reaches the outsider or
// changes. Issue 8, acceptance 8: every query parameter that carries a page position (cursor,
// before, after) answers each forged cursor with 400, never a 500.
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createConversation,
  registerUser,
  sendMessage,
  type AuthData,
  type ConversationData,
  type MessageData,
  type RegisteredUser,
} from '../factories.js';
import type { ApiResponse, Envelope } from '../support/api-client.js';
import { png } from '../support/files.js';
import { FORGED_CURSORS } from '../support/forged-cursors.js';
import { startTestServer, type TestServer } from '../support/server.js';

type Schema = {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  format?: string;
};
interface Operation {
  parameters?: Array<{ name: string; in: 'path' | 'query'; required?: boolean; schema: Schema }>;
  requestBody?: { content: Record<string, { schema: Schema }> };
}
interface Doc {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Schema> };
}

const SECRET = 'VICTIM-SECRET-7c1d';

let server: TestServer;
let doc: Doc;
let victim: { owner: RegisteredUser; conversation: ConversationData; messages: MessageData[] };

beforeAll(async () => {
  server = await startTestServer({
    REGISTER_MAX_PER_IP: '1000000',
    LOGIN_MAX_FAILURES_PER_EMAIL_IP: '1000000',
    LOGIN_MAX_FAILURES_PER_IP: '1000000',
    MESSAGE_RATE_LIMIT: '1000000',
  });
  doc = (await server.api.get<Doc>('/openapi.json')).body;
  const owner = await registerUser(server.api);
  const conversation = await createConversation(server.api, owner, { title: `${SECRET} title` });
  const messages = [];
  for (let i = 0; i < 3; i++)
    messages.push(await sendMessage(server.api, owner, conversation.id, `${SECRET} message ${i}`));
  victim = { owner, conversation, messages };
}, 60_000);
afterAll(async () => {
  await server.close();
});

/** A small seeded PRNG, so a failure reproduces. */
function prng(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
    chance: (p: number) => next() < p,
  };
}

/** Any generated value as query text (objects may have no prototype, so no String()). */
const asText = (value: unknown) =>
  typeof value === 'string' ? value : (JSON.stringify(value) ?? '');

/** Query parameters that carry a page position: a cursor, or the message to page from. */
const POSITION_PARAMS = new Set(['cursor', 'before', 'after']);

const WEIRD_STRINGS = [
  '',
  ' ',
  '\u0000',
  '💥'.repeat(50),
  'x'.repeat(40_000),
  '<script>',
  "'; drop table users; --",
  '../../etc/passwd',
  '%00',
  '你好',
  '__proto__',
  'null',
  '-1',
  '1e309',
];

/** A valid value of a simple query parameter schema. */
function plainValue(schema: Schema): string {
  const fixed = schema.const ?? schema.enum?.[0];
  if (fixed !== undefined) return asText(fixed);
  if (schema.type === 'integer' || schema.type === 'number') return String(schema.minimum ?? 1);
  if (schema.type === 'boolean') return 'true';
  return 'text';
}

describe('requests generated from the OpenAPI document', () => {
  it('answers every forged cursor in every cursor, before and after parameter with 400', async () => {
    const me = await registerUser(server.api);
    const conversation = await createConversation(server.api, me, { title: 'pages' });
    // Messages, so a position that got through would have somewhere to page from.
    for (let i = 0; i < 3; i++) await sendMessage(server.api, me, conversation.id, `m${i}`);
    await createConversation(server.api, me, { title: 'a second page' });

    const targets = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).flatMap(([method, op]) =>
        (op.parameters ?? [])
          .filter((p) => p.in === 'query' && POSITION_PARAMS.has(p.name))
          .map((param) => ({ path, method: method.toUpperCase(), op, param: param.name })),
      ),
    );
    // The document names the parameters this test is about; a renamed one must not slip by.
    expect(targets.map((t) => `${t.method} ${t.path} ${t.param}`).sort()).toEqual(
      expect.arrayContaining([
        'GET /api/chat/conversations/{id}/messages after',
        'GET /api/chat/conversations/{id}/messages before',
        'GET /api/conversations cursor',
      ]),
    );

    for (const { path, method, op, param } of targets) {
      const url = path.replace(/\{(\w+)\}/g, () => conversation.id);
      for (const [label, value] of FORGED_CURSORS) {
        const query = new URLSearchParams();
        // Every other required parameter valid, so the forged one is the only fault.
        for (const other of op.parameters ?? [])
          if (other.in === 'query' && other.required && other.name !== param)
            query.append(other.name, plainValue(other.schema));
        query.append(param, value);
        const response = await server.api.request(method, `${url}?${query.toString()}`, undefined, {
          token: me.accessToken,
        });
        const what = `${method} ${url} ${param}=${label}: ${response.text.slice(0, 200)}`;
        expect(response.status, what).toBe(400);
        expect(response.body, what).toMatchObject({ success: false, code: 'VALIDATION_ERROR' });
      }
    }
  });

  it('survives 1,200 generated requests as a user and an outsider, and leaks nothing', async () => {
    const rng = prng(20261124);
    const me = await registerUser(server.api);
    const outsider = await registerUser(server.api);
    const tokens = { me: me.accessToken, outsider: outsider.accessToken };
    const mine = {
      conversation: await createConversation(server.api, me, { title: 'mine' }),
      messages: [] as MessageData[],
    };
    mine.messages.push(await sendMessage(server.api, me, mine.conversation.id, 'my message'));

    const victimIds = [victim.conversation.id, ...victim.messages.map((m) => m.id)];
    const ids = () => [
      mine.conversation.id,
      ...mine.messages.map((m) => m.id),
      ...victimIds,
      me.user.id,
      outsider.user.id,
      victim.owner.user.id,
      'nosuchid000000000000000a',
    ];

    const valueFor = (name: string, schema: Schema | undefined, depth = 0): unknown => {
      if (!schema || depth > 6) return null;
      if (schema.$ref)
        return valueFor(name, doc.components?.schemas?.[schema.$ref.split('/').pop()!], depth + 1);
      if (schema.const !== undefined) return schema.const;
      if (schema.enum) return rng.pick(schema.enum);
      const alternatives = schema.anyOf ?? schema.oneOf;
      if (alternatives) return valueFor(name, rng.pick(alternatives), depth + 1);
      const type = Array.isArray(schema.type) ? rng.pick(schema.type) : schema.type;
      switch (type) {
        case 'string':
          if (POSITION_PARAMS.has(name) && rng.chance(0.3)) return rng.pick(FORGED_CURSORS)[1];
          if (/id$/i.test(name) || ['before', 'after', 'avatar'].includes(name))
            return rng.pick(ids());
          // Usernames that fit the rule half the time, so lookups and renames get past validation.
          if (name === 'username')
            return rng.chance(0.5) ? `fuzz_${rng.int(1e6)}` : rng.pick(WEIRD_STRINGS);
          if (name === 'emoji') return rng.pick(['👍', '🎉', '🇫🇷', 'abc']);
          if (name === 'email') return `fuzz${rng.int(1e9)}@example.test`;
          if (name === 'password') return `pw-${rng.int(1e9)}-long-enough`;
          if (name === 'q') return rng.pick(['hello', '你好', 'run', SECRET]);
          return rng.chance(0.8) ? `text ${rng.int(1000)}` : rng.pick(WEIRD_STRINGS);
        case 'integer':
        case 'number':
          return (
            (schema.minimum ?? 0) +
            rng.int(Math.max(1, Math.min(50, (schema.maximum ?? 50) - (schema.minimum ?? 0))))
          );
        case 'boolean':
          return rng.chance(0.5);
        case 'array':
          return Array.from({ length: rng.int(3) }, () =>
            valueFor(name.replace(/s$/, ''), schema.items, depth + 1),
          );
        case 'object': {
          const result: Record<string, unknown> = {};
          for (const [key, child] of Object.entries(schema.properties ?? {})) {
            if (schema.required?.includes(key) || rng.chance(0.5))
              result[key] = valueFor(key, child, depth + 1);
          }
          return result;
        }
        default:
          return null;
      }
    };

    /** One of: as generated, a field mutated, removed or added, or something else entirely. */
    const mutate = (value: unknown): unknown => {
      const roll = rng.int(10);
      if (roll < 4 || typeof value !== 'object' || value === null || Array.isArray(value)) {
        if (roll >= 8) return fc.sample(fc.jsonValue(), { numRuns: 1, seed: rng.int(1e9) })[0];
        return value;
      }
      const copy: Record<string, unknown> = { ...value };
      const keys = Object.keys(copy);
      if (roll < 6 && keys.length)
        copy[rng.pick(keys)] = rng.pick([...WEIRD_STRINGS, 42, -1, null, [], {}, true, 1e308]);
      else if (roll < 7 && keys.length) delete copy[rng.pick(keys)];
      else
        copy[rng.pick(['role', 'isDeleted', 'conversationId', 'userId', 'extra'])] =
          rng.pick(ids());
      return copy;
    };

    const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, op]) => ({ path, method: method.toUpperCase(), op })),
    );
    expect(operations.length).toBeGreaterThanOrEqual(28);

    const statuses = new Map<number, number>();
    let sent = 0;
    for (let i = 0; i < 1200; i++) {
      const actor = i % 2 === 0 ? 'me' : 'outsider';
      const { path, method, op } = operations[i % operations.length]!;
      let url = path.replace(/\{(\w+)\}/g, (_, name: string) => {
        const param = op.parameters?.find((p) => p.in === 'path' && p.name === name);
        const value = rng.chance(0.85)
          ? valueFor(name, param?.schema)
          : rng.pick(WEIRD_STRINGS.slice(0, 10));
        return encodeURIComponent(String(value));
      });
      const query = new URLSearchParams();
      for (const param of op.parameters?.filter((p) => p.in === 'query') ?? []) {
        if (param.required || rng.chance(0.6))
          query.append(param.name, asText(mutate(valueFor(param.name, param.schema))));
      }
      if (rng.chance(0.1))
        query.append(rng.pick(['limit', 'page', 'extra']), rng.pick(['-1', '1e9', 'NaN', '']));
      if ([...query].length) url += `?${query.toString()}`;
      const schema = op.requestBody?.content['application/json']?.schema;
      const body = schema ? mutate(valueFor('body', schema)) : undefined;
      const raw = schema && rng.chance(0.05) ? '{"truncated": ' : undefined;
      // Upload routes get a form: a file (an image, text, or noise) under a weird name.
      const form = op.requestBody?.content['multipart/form-data'] ? new FormData() : undefined;
      if (form) {
        const bytes = rng.pick([png(2, 3), Buffer.from(rng.pick(WEIRD_STRINGS)), randomBytes(64)]);
        form.append(rng.chance(0.9) ? 'file' : 'other', new Blob([bytes]), rng.pick(WEIRD_STRINGS));
      }

      let response: ApiResponse<unknown>;
      try {
        response = await server.api.request(method, url, raw || form ? undefined : body, {
          token: rng.chance(0.95) ? tokens[actor] : 'not-a-token',
          ...(raw ? { raw, headers: { 'content-type': 'application/json' } } : {}),
          ...(form ? { form } : {}),
        });
      } catch (error) {
        if (error instanceof TypeError) continue; // fetch refused the request before sending it
        throw error;
      }
      sent += 1;
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      expect(
        response.status,
        `${method} ${url} ${JSON.stringify(body)?.slice(0, 300)} → ${response.text.slice(0, 300)}`,
      ).toBeLessThan(500);
      if (actor === 'outsider') {
        // An id the outsider sent may come back in an error ("No route for …"); any other may not.
        const sentText = `${url} ${JSON.stringify(body) ?? ''}`;
        for (const id of victimIds) {
          if (!sentText.includes(id)) {
            expect(response.text, `${method} ${url} leaked ${id}`).not.toContain(id);
          }
        }
        expect(response.text, `${method} ${url}`).not.toContain(SECRET);
      }

      // Keep both sessions alive (the fuzzer may log out or revoke), and give "me" a room again
      // when the fuzzer deleted or left it.
      if (i % 20 === 19) {
        for (const who of ['me', 'outsider'] as const) {
          if ((await server.api.get('/api/auth/me', { token: tokens[who] })).status === 401) {
            const user = who === 'me' ? me : outsider;
            tokens[who] = (
              await server.api.post<Envelope<AuthData>>('/api/auth/login', {
                email: user.input.email,
                password: user.input.password,
              })
            ).body.data!.accessToken;
          }
        }
        if (
          (await server.api.get(`/api/conversations/${mine.conversation.id}`, { token: tokens.me }))
            .status !== 200
        ) {
          mine.conversation = await createConversation(
            server.api,
            { ...me, accessToken: tokens.me },
            { title: 'mine again' },
          );
          mine.messages = [
            await sendMessage(
              server.api,
              { ...me, accessToken: tokens.me },
              mine.conversation.id,
              'again',
            ),
          ];
        }
      }
    }
    expect(sent).toBeGreaterThanOrEqual(1000);
    // A healthy mix of outcomes: successes and each kind of refusal.
    for (const status of [200, 201, 400, 403, 404])
      expect(statuses.get(status) ?? 0, `status ${status}`).toBeGreaterThan(10);

    // The process still answers, and the victim's conversation is exactly as it was.
    expect((await server.api.get('/health')).status).toBe(200);
    const after = await server.api.get<Envelope<{ messages: MessageData[] }>>(
      `/api/chat/conversations/${victim.conversation.id}/messages`,
      { token: victim.owner.accessToken },
    );
    expect(after.body.data!.messages.map((m) => [m.id, m.content, m.isDeleted])).toEqual(
      victim.messages.map((m) => [m.id, m.content, false]),
    );
    const conversation = await server.api.get<Envelope<ConversationData>>(
      `/api/conversations/${victim.conversation.id}`,
      {
        token: victim.owner.accessToken,
      },
    );
    expect(conversation.body.data).toMatchObject({ title: `${SECRET} title` });
    expect(conversation.body.data!.participants.map((p) => p.userId)).toEqual([
      victim.owner.user.id,
    ]);
  }, 240_000);
});
