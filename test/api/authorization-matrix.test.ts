// Issue 3, acceptance 1: every route the router has, against every kind of caller, every cell
// asserted. The routes come from the router itself (listRoutes), so a route added without a
// row here fails the first test.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listRoutes } from '../../src/openapi/document.js';
import {
  buildRoom,
  buildUserInput,
  registerUser,
  sendMessage,
  type AuthData,
  type ConversationData,
  type RegisteredUser,
} from '../factories.js';
import { startFakeAiServer, type FakeAiServer } from '../support/ai.js';
import { upload } from '../support/files.js';
import type { Envelope } from '../support/api-client.js';
import { withGlobalRole } from '../support/roles.js';
import type { TestServer } from '../support/server.js';

const ACTORS = ['anonymous', 'outsider', 'member', 'admin', 'owner', 'globalAdmin'] as const;
type Actor = (typeof ACTORS)[number];

interface Room {
  owner: RegisteredUser;
  admin: RegisteredUser;
  member: RegisteredUser;
  conversation: ConversationData;
  /** The member's message, and the AI's answer to it. */
  messageId: string;
  answerId: string;
  generationId: string;
  /** A file the member sent with that message. */
  attachmentId: string;
}

interface Call {
  path: string;
  body?: unknown;
  /** A multipart form (uploads) instead of a JSON body. */
  form?: FormData;
  /** Overrides the actor's token (routes that consume a session: logout, refresh). */
  token?: string | null;
}

interface Row {
  /** "METHOD /express/path" exactly as the router has it. */
  route: string;
  /** Destructive rows get a room of their own per cell. */
  fresh?: boolean;
  call: (room: Room, caller: RegisteredUser | undefined) => Promise<Call> | Call;
  expect: Record<Actor, number>;
}

const all = (status: number, anonymous = 401): Record<Actor, number> => ({
  anonymous,
  outsider: status,
  member: status,
  admin: status,
  owner: status,
  globalAdmin: status,
});
/** Inside a conversation: 401 anonymous, 403 outsiders and non-participant global admins. */
const inRoom = (member: number, admin: number, owner: number, globalAdmin = 403) => ({
  anonymous: 401,
  outsider: 403,
  member,
  admin,
  owner,
  globalAdmin,
});

let ai: FakeAiServer;
let server: TestServer;
let shared: Room;
const actors = {} as Record<Exclude<Actor, 'anonymous'>, RegisteredUser>;

async function newRoom(): Promise<Room> {
  const room = await buildRoom(server.api);
  const file = await upload(server.url, room.member.accessToken, Buffer.from('notes'), 'n.txt');
  const sent = await server.api.post<
    Envelope<{ message: { id: string }; generation: { id: string; messageId: string } }>
  >(
    `/api/chat/conversations/${room.conversation.id}/messages`,
    { content: 'hello room', attachments: [file.body.data!.id] },
    {
      token: room.member.accessToken,
    },
  );
  const { message, generation } = sent.body.data!;
  await server.api.post(
    `/api/chat/messages/${message.id}/reactions`,
    { emoji: '👍' },
    {
      token: room.member.accessToken,
    },
  );
  return {
    ...room,
    messageId: message.id,
    answerId: generation.messageId,
    generationId: generation.id,
    attachmentId: file.body.data!.id,
  };
}

/** Waits until no answer in the room is still being written. */
async function answersDone(room: Room): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const page = await server.api.get<Envelope<{ messages: Array<{ status: string }> }>>(
      `/api/chat/conversations/${room.conversation.id}/messages`,
      { token: room.owner.accessToken },
    );
    if (page.body.data!.messages.every((m) => m.status !== 'SENDING')) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('answers did not finish');
}

/** A new session for a user, so a row can consume it (logout, refresh, revoke). */
async function login(user: RegisteredUser): Promise<AuthData> {
  const response = await server.api.post<Envelope<AuthData>>('/api/auth/login', {
    email: user.input.email,
    password: user.input.password,
  });
  return response.body.data!;
}

const ROWS: Row[] = [
  // Operations and docs: open to everyone.
  { route: 'GET /health', call: () => ({ path: '/health' }), expect: all(200, 200) },
  { route: 'GET /ready', call: () => ({ path: '/ready' }), expect: all(200, 200) },
  { route: 'GET /metrics', call: () => ({ path: '/metrics' }), expect: all(200, 200) },
  { route: 'GET /openapi.json', call: () => ({ path: '/openapi.json' }), expect: all(200, 200) },
  { route: 'GET /docs', call: () => ({ path: '/docs' }), expect: all(200, 200) },
  { route: 'GET /docs/init.js', call: () => ({ path: '/docs/init.js' }), expect: all(200, 200) },
  // Accounts: the caller's own, whoever they are.
  {
    route: 'POST /api/auth/register',
    call: () => ({ path: '/api/auth/register', body: buildUserInput() }),
    expect: all(201, 201),
  },
  {
    route: 'POST /api/auth/login',
    call: (room, caller) => {
      const who = caller ?? room.member;
      return {
        path: '/api/auth/login',
        body: { email: who.input.email, password: who.input.password },
      };
    },
    expect: all(200, 200),
  },
  {
    route: 'POST /api/auth/refresh',
    call: async (room, caller) => ({
      path: '/api/auth/refresh',
      body: { refreshToken: (await login(caller ?? room.member)).refreshToken },
    }),
    expect: all(200, 200),
  },
  {
    route: 'POST /api/auth/logout',
    call: async (_room, caller) => ({
      path: '/api/auth/logout',
      token: caller ? (await login(caller)).accessToken : null,
    }),
    expect: all(200),
  },
  { route: 'GET /api/auth/me', call: () => ({ path: '/api/auth/me' }), expect: all(200) },
  {
    route: 'GET /api/auth/sessions',
    call: () => ({ path: '/api/auth/sessions' }),
    expect: all(200),
  },
  {
    route: 'DELETE /api/auth/sessions/:id',
    call: async (room, caller) => {
      const spare = await login(caller ?? room.member);
      const sid = JSON.parse(Buffer.from(spare.accessToken.split('.')[1]!, 'base64url').toString())
        .sid as string;
      return { path: `/api/auth/sessions/${sid}` };
    },
    expect: all(200),
  },
  {
    route: 'PATCH /api/auth/me',
    call: () => ({ path: '/api/auth/me', body: { avatar: null } }),
    expect: all(200),
  },
  {
    // The actor's own password, set to itself: their other sessions end, this one stays.
    route: 'POST /api/auth/password',
    call: (_room, caller) => ({
      path: '/api/auth/password',
      body: {
        currentPassword: caller?.input.password ?? 'anything',
        newPassword: caller?.input.password ?? 'anything-long',
      },
    }),
    expect: all(200),
  },
  {
    // An account of the actor's kind made for the cell: deleting the actor would end the table.
    route: 'DELETE /api/auth/me',
    call: async (_room, caller) => {
      if (!caller) return { path: '/api/auth/me', body: { password: 'anything' } };
      const doomed = await registerUser(server.api);
      return {
        path: '/api/auth/me',
        body: { password: doomed.input.password },
        token: doomed.accessToken,
      };
    },
    expect: all(200),
  },
  {
    route: 'GET /api/auth/me/export',
    call: () => ({ path: '/api/auth/me/export' }),
    expect: all(200),
  },
  // Users: anyone signed in finds anyone by exact username.
  {
    route: 'GET /api/users/lookup',
    call: (room) => ({ path: `/api/users/lookup?username=${room.member.user.username}` }),
    expect: all(200),
  },
  // Conversations.
  {
    route: 'POST /api/conversations',
    call: () => ({ path: '/api/conversations', body: { title: 'mine' } }),
    expect: all(201),
  },
  {
    route: 'GET /api/conversations',
    call: () => ({ path: '/api/conversations' }),
    expect: all(200),
  },
  {
    route: 'GET /api/conversations/:id',
    call: (r) => ({ path: `/api/conversations/${r.conversation.id}` }),
    expect: inRoom(200, 200, 200),
  },
  {
    route: 'PATCH /api/conversations/:id',
    call: (r) => ({ path: `/api/conversations/${r.conversation.id}`, body: { title: 'renamed' } }),
    expect: inRoom(403, 200, 200),
  },
  {
    route: 'DELETE /api/conversations/:id',
    fresh: true,
    call: (r) => ({ path: `/api/conversations/${r.conversation.id}` }),
    expect: inRoom(403, 403, 200),
  },
  {
    route: 'POST /api/conversations/:id/archive',
    call: (r) => ({
      path: `/api/conversations/${r.conversation.id}/archive`,
      body: { archived: false },
    }),
    expect: inRoom(403, 200, 200),
  },
  {
    route: 'POST /api/conversations/:id/participants',
    call: async (r) => ({
      path: `/api/conversations/${r.conversation.id}/participants`,
      body: { userId: (await registerUser(server.api)).user.id },
    }),
    expect: inRoom(403, 201, 201),
  },
  {
    route: 'DELETE /api/conversations/:id/participants/:userId',
    call: async (r) => {
      const extra = await registerUser(server.api);
      await server.api.post(
        `/api/conversations/${r.conversation.id}/participants`,
        { userId: extra.user.id },
        {
          token: r.owner.accessToken,
        },
      );
      return { path: `/api/conversations/${r.conversation.id}/participants/${extra.user.id}` };
    },
    expect: inRoom(403, 200, 200),
  },
  // Messages.
  {
    route: 'POST /api/chat/conversations/:id/messages',
    call: (r) => ({
      path: `/api/chat/conversations/${r.conversation.id}/messages`,
      body: { content: 'hi' },
    }),
    expect: inRoom(201, 201, 201),
  },
  {
    route: 'GET /api/chat/conversations/:id/messages',
    call: (r) => ({ path: `/api/chat/conversations/${r.conversation.id}/messages` }),
    expect: inRoom(200, 200, 200),
  },
  {
    route: 'PATCH /api/chat/messages/:id',
    call: (r) => ({ path: `/api/chat/messages/${r.messageId}`, body: { content: 'edited' } }),
    expect: inRoom(200, 403, 403),
  },
  {
    route: 'DELETE /api/chat/messages/:id',
    call: async (r) => ({
      path: `/api/chat/messages/${(await sendMessage(server.api, r.member, r.conversation.id, 'doomed')).id}`,
    }),
    expect: inRoom(200, 200, 200, 200),
  },
  {
    route: 'POST /api/chat/messages/:id/reactions',
    call: (r) => ({ path: `/api/chat/messages/${r.messageId}/reactions`, body: { emoji: '🎉' } }),
    expect: inRoom(201, 201, 201),
  },
  {
    route: 'DELETE /api/chat/messages/:id/reactions/:emoji',
    call: (r) => ({
      path: `/api/chat/messages/${r.messageId}/reactions/${encodeURIComponent('🎉')}`,
    }),
    expect: inRoom(200, 200, 200),
  },
  {
    route: 'POST /api/chat/conversations/:id/read',
    call: (r) => ({ path: `/api/chat/conversations/${r.conversation.id}/read`, body: {} }),
    expect: inRoom(200, 200, 200),
  },
  {
    route: 'GET /api/chat/conversations/:id/search',
    call: (r) => ({ path: `/api/chat/conversations/${r.conversation.id}/search?q=hello` }),
    expect: inRoom(200, 200, 200),
  },
  {
    route: 'GET /api/chat/search',
    call: () => ({ path: '/api/chat/search?q=hello' }),
    expect: all(200),
  },
  // Attachments: anyone signed in uploads; a sent file is seen by its conversation's
  // participants and its uploader, and is "not found" for everyone else (ids cannot be probed).
  {
    route: 'POST /api/attachments',
    call: () => {
      const form = new FormData();
      form.append('file', new Blob(['some text']), 'a.txt');
      return { path: '/api/attachments', form };
    },
    expect: all(201),
  },
  {
    route: 'GET /api/attachments/:id',
    call: (r) => ({ path: `/api/attachments/${r.attachmentId}` }),
    expect: { ...inRoom(200, 200, 200, 404), outsider: 404 },
  },
  {
    route: 'GET /api/attachments/:id/content',
    call: (r) => ({ path: `/api/attachments/${r.attachmentId}/content` }),
    expect: { ...inRoom(200, 200, 200, 404), outsider: 404 },
  },
  // AI answers.
  {
    route: 'POST /api/chat/messages/:id/edit-branch',
    call: (r) => ({
      path: `/api/chat/messages/${r.messageId}/edit-branch`,
      body: { content: 'hello again' },
    }),
    expect: inRoom(201, 403, 403),
  },
  {
    route: 'POST /api/chat/messages/:id/regenerate',
    call: (r) => ({ path: `/api/chat/messages/${r.answerId}/regenerate` }),
    expect: inRoom(201, 201, 201),
  },
  {
    // A room of its own per caller: a version to switch back to, its answer finished first (a
    // switch waits for answers being written on the branch it changes).
    route: 'POST /api/chat/messages/:id/activate',
    fresh: true,
    call: async (r) => {
      await server.api.post(`/api/chat/messages/${r.answerId}/regenerate`, undefined, {
        token: r.member.accessToken,
      });
      await answersDone(r);
      return { path: `/api/chat/messages/${r.answerId}/activate` };
    },
    expect: inRoom(200, 200, 200),
  },
  {
    route: 'GET /api/chat/generations/:id/stream',
    call: (r) => ({ path: `/api/chat/generations/${r.generationId}/stream` }),
    expect: inRoom(200, 200, 200),
  },
  {
    route: 'POST /api/chat/generations/:id/stop',
    call: (r) => ({ path: `/api/chat/generations/${r.generationId}/stop` }),
    expect: inRoom(200, 200, 200),
  },
];

beforeAll(async () => {
  // The fake OpenAI-compatible upstream answers (through the real SDK and runner), so the AI
  // routes act on real generations on any machine: who may call a route has nothing to do with
  // which model answers, and the matrix must not skip where ../shared's test model is missing.
  ai = await startFakeAiServer({
    REGISTER_MAX_PER_IP: '100000',
    // Every caller asks again and again: the per-user cap of answers is not what this tests.
    AI_MAX_PENDING_PER_USER: '1000',
  });
  server = ai.server;
  shared = await newRoom();
  actors.owner = shared.owner;
  actors.admin = shared.admin;
  actors.member = shared.member;
  actors.outsider = await registerUser(server.api);
  actors.globalAdmin = await withGlobalRole(server, await registerUser(server.api), 'ADMIN');
}, 60_000);
afterAll(async () => {
  await ai.close();
});

describe('authorization matrix', () => {
  it('has exactly one row for every route the router has', () => {
    const routes = listRoutes(server.app).map((r) => `${r.method.toUpperCase()} ${r.path}`);
    const rows = ROWS.map((r) => r.route);
    expect(new Set(rows).size).toBe(rows.length);
    expect([...rows].sort()).toEqual([...routes].sort());
  });

  for (const row of ROWS) {
    it(`${row.route}: ${ACTORS.map((a) => `${a} ${row.expect[a]}`).join(', ')}`, async () => {
      const [method] = row.route.split(' ');
      const observed: Partial<Record<Actor, number>> = {};
      for (const actor of ACTORS) {
        let room = shared;
        let caller = actor === 'anonymous' ? undefined : actors[actor];
        if (row.fresh) {
          room = await newRoom();
          // Room roles belong to that room's users; the others stay who they are.
          if (actor === 'owner' || actor === 'admin' || actor === 'member') caller = room[actor];
        }
        const call = await row.call(room, caller);
        const token = call.token === undefined ? caller?.accessToken : (call.token ?? undefined);
        const response = await server.api.request(method!, call.path, call.body, {
          ...(token ? { token } : {}),
          ...(call.form ? { form: call.form } : {}),
        });
        observed[actor] = response.status;
        if (response.status >= 400) expect(response.body).toMatchObject({ success: false });
      }
      expect(observed).toEqual(row.expect);
    });
  }

  it('shows outsiders and non-participant admins nothing of a conversation in search', async () => {
    for (const user of [actors.outsider, actors.globalAdmin]) {
      const response = await server.api.get('/api/chat/search?q=hello', {
        token: user.accessToken,
      });
      expect(response.text).not.toContain(shared.conversation.id);
      expect(response.text).not.toContain('hello room');
    }
  });
});
