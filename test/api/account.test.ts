// Issue 11, acceptance 3: one's own account — username and avatar, password change (other
// sessions end, sockets within 2 s), deletion (nothing of the user left but their messages in
// shared conversations, checked in every table), the streamed export, and username lookup — on
// PGlite and PostgreSQL, with requests racing each other.
import { sql } from 'drizzle-orm';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createConversation,
  registerUser,
  type AuthData,
  type ConversationData,
  type MessageData,
  type RegisteredUser,
} from '../factories.js';
import { startFakeAiServer, type FakeAiServer } from '../support/ai.js';
import { capturingLogger } from '../support/logs.js';
import type { ApiResponse, Envelope } from '../support/api-client.js';
import { png, upload, type AttachmentData } from '../support/files.js';
import { filesUnder } from '../support/s3-server.js';
import { settle, socketSuite, type RecordingSocket } from '../support/sockets.js';
import { selectRows } from '../support/sql.js';
import type { TestServer } from '../support/server.js';

const HOUR = 3_600_000;
const LOOKUP_LIMIT = 8;
/** Delays between the requests racing an account deletion, one round each. */
const STEPS_MS = [0, 6, 12, 18, 25];

let ai: FakeAiServer;
let server: TestServer;
const logs = capturingLogger();
const sockets = socketSuite({ beforeAll, afterEach, afterAll }, async () => {
  ai = await startFakeAiServer(
    {
      REGISTER_MAX_PER_IP: '100000',
      UPLOAD_RATE_LIMIT: '100000',
      AI_MAX_PENDING_PER_USER: '1000',
      LOOKUP_RATE_LIMIT: String(LOOKUP_LIMIT),
    },
    { logger: logs.logger },
  );
  server = ai.server;
  return ai;
});
// Whatever the races did, the server never met an error it did not expect.
afterEach(() => {
  const errors = logs.entries.filter((entry) => entry.level === 'error');
  expect(errors).toEqual([]);
});

interface UserView {
  id: string;
  email: string;
  username: string | null;
  avatar: string | null;
  [field: string]: unknown;
}
interface FullMessage extends MessageData {
  author: { id: string; username: string | null; avatar: string | null } | null;
  superseded: boolean;
  reactions: Array<{ emoji: string; userIds: string[] }>;
  attachments: AttachmentData[];
}
interface ExportDocument {
  format: string;
  exportedAt: string;
  user: UserView;
  sessions: Array<Record<string, unknown>>;
  conversations: Array<
    ConversationData & {
      messages: FullMessage[];
      participants: Array<{ userId: string; role: string; avatar: string | null }>;
    }
  >;
  uploads: Array<AttachmentData & { messageId: string | null }>;
}

const db = () => server.container.database.db;
const as = (user: { accessToken: string }) => ({ token: user.accessToken });

async function login(email: string, password: string): Promise<ApiResponse<Envelope<AuthData>>> {
  return server.api.post<Envelope<AuthData>>('/api/auth/login', { email, password });
}
async function loginAgain(user: RegisteredUser): Promise<AuthData> {
  const response = await login(user.input.email, user.input.password);
  expect(response.status).toBe(200);
  return response.body.data!;
}
const meStatus = async (token: string) => (await server.api.get('/api/auth/me', { token })).status;
const deleteAccount = (token: string, password: string) =>
  server.api.request('DELETE', '/api/auth/me', { password }, { token });
const changePassword = (token: string, currentPassword: string, newPassword: string) =>
  server.api.post<Envelope<{ changed: true; revokedSessions: number }>>(
    '/api/auth/password',
    { currentPassword, newPassword },
    { token },
  );
const patchMe = (user: { accessToken: string }, body: unknown) =>
  server.api.patch<Envelope<UserView>>('/api/auth/me', body, as(user));

async function send(
  user: { accessToken: string },
  conversationId: string,
  content: string,
  extra: Record<string, unknown> = {},
): Promise<FullMessage> {
  const response = await server.api.post<Envelope<{ message: FullMessage }>>(
    `/api/chat/conversations/${conversationId}/messages`,
    { content, ai: false, ...extra },
    as(user),
  );
  expect(response.status, response.text).toBe(201);
  return response.body.data!.message;
}
const react = (user: { accessToken: string }, messageId: string, emoji: string) =>
  server.api.post(`/api/chat/messages/${messageId}/reactions`, { emoji }, as(user));
async function uploadFile(user: { accessToken: string }, bytes: Buffer, name: string) {
  const response = await upload(server.url, user.accessToken, bytes, name);
  expect(response.status).toBe(201);
  return response.body.data!;
}
async function messagesOf(user: { accessToken: string }, conversationId: string) {
  const response = await server.api.get<Envelope<{ messages: FullMessage[] }>>(
    `/api/chat/conversations/${conversationId}/messages?limit=100`,
    as(user),
  );
  expect(response.status).toBe(200);
  return response.body.data!.messages;
}

const storedFiles = () => filesUnder(path.join(server.config.DATA_DIR, 'uploads'));

const disconnected = (s: RecordingSocket) =>
  new Promise<number>((resolve) => {
    const started = Date.now();
    if (!s.socket.connected) resolve(0);
    s.socket.once('disconnect', () => resolve(Date.now() - started));
  });

/** Every table of the schema whose rows, as text, contain any of `needles`. */
async function tracesOf(needles: readonly string[]): Promise<string[]> {
  const tables = await selectRows<{ name: string }>(
    db(),
    sql`select table_name as name from information_schema.tables
        where table_schema = 'public' and table_type = 'BASE TABLE'`,
  );
  expect(tables.map((t) => t.name)).toEqual(
    expect.arrayContaining(['users', 'messages', 'attachments', 'generations']),
  );
  const found: string[] = [];
  for (const { name } of tables) {
    for (const needle of needles) {
      const [row] = await selectRows<{ n: number }>(
        db(),
        sql`select count(*)::int as n from ${sql.identifier(name)} t
            where position(${needle} in t::text) > 0`,
      );
      if (row!.n > 0) found.push(`${name} ∋ ${needle}`);
    }
  }
  return found;
}

/** Live conversations whose membership breaks the rule: not exactly one OWNER, or nobody. */
async function conversationsWithoutOneOwner(): Promise<unknown[]> {
  return selectRows(
    db(),
    sql`select c.id, count(p.id)::int as members,
               count(*) filter (where p.role = 'OWNER')::int as owners
        from conversations c left join conversation_participants p on p.conversation_id = c.id
        where not c.is_deleted
        group by c.id
        having count(*) filter (where p.role = 'OWNER') <> 1 or count(p.id) = 0`,
  );
}

describe('PATCH /api/auth/me', () => {
  it('changes the username; one taken (ignoring case) is 409, a malformed one 400', async () => {
    const [alice, bob] = await Promise.all([registerUser(server.api), registerUser(server.api)]);
    const renamed = await patchMe(alice, { username: `Al_${alice.user.id.slice(0, 8)}` });
    expect(renamed.status).toBe(200);
    expect(renamed.body.data).toMatchObject({
      id: alice.user.id,
      username: `Al_${alice.user.id.slice(0, 8)}`,
    });
    expect(renamed.body.data).not.toHaveProperty('passwordHash');
    // Only the case of one's own name changes: not a conflict with oneself.
    const recased = await patchMe(alice, { username: `aL_${alice.user.id.slice(0, 8)}` });
    expect(recased.status).toBe(200);

    const taken = await patchMe(bob, { username: `AL_${alice.user.id.slice(0, 8)}`.toUpperCase() });
    expect(taken.status).toBe(409);
    expect(taken.body.code).toBe('CONFLICT');
    for (const username of ['ab', 'has space', 'x'.repeat(33), 42, null]) {
      const bad = await patchMe(bob, { username });
      expect(bad.status, String(username)).toBe(400);
    }
    expect((await patchMe(bob, { email: 'new@example.test' })).status).toBe(400);
    // Nothing changed by the refusals.
    const me = await server.api.get<Envelope<UserView>>('/api/auth/me', as(bob));
    expect(me.body.data!.username).toBe(bob.user.username);

    // Two people taking the same name at once: one gets it.
    const carol = await registerUser(server.api);
    const wanted = `same_${carol.user.id.slice(0, 10)}`;
    const results = await Promise.all([
      patchMe(bob, { username: wanted }),
      patchMe(carol, { username: wanted.toUpperCase() }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
  });

  it('sets an avatar from one’s own picture: its content path everywhere the user shows, readable by anyone signed in', async () => {
    const [alice, bob, stranger] = await Promise.all([
      registerUser(server.api),
      registerUser(server.api),
      registerUser(server.api),
    ]);
    const picture = await uploadFile(alice, png(16, 16), 'me.png');
    const set = await patchMe(alice, { avatar: picture.id });
    expect(set.status).toBe(200);
    const avatar = `/api/attachments/${picture.id}/content`;
    expect(set.body.data!.avatar).toBe(avatar);
    expect(
      (await server.api.get<Envelope<UserView>>('/api/auth/me', as(alice))).body.data!.avatar,
    ).toBe(avatar);

    const conversation = await createConversation(server.api, alice, {
      participantIds: [bob.user.id],
    });
    await send(alice, conversation.id, 'with my face');
    const seen = await server.api.get<
      Envelope<{ participants: Array<{ userId: string; avatar: string | null }> }>
    >(`/api/conversations/${conversation.id}`, as(bob));
    expect(seen.body.data!.participants.find((p) => p.userId === alice.user.id)!.avatar).toBe(
      avatar,
    );
    const [message] = await messagesOf(bob, conversation.id);
    expect(message!.author).toEqual({ id: alice.user.id, username: alice.user.username, avatar });
    const found = await server.api.get<Envelope<UserView>>(
      `/api/users/lookup?username=${alice.user.username}`,
      as(stranger),
    );
    expect(found.body.data!.avatar).toBe(avatar);

    // Someone who shares nothing with alice still sees her picture; nobody signed out does.
    const bytes = await fetch(`${server.url}${avatar}`, {
      headers: { authorization: `Bearer ${stranger.accessToken}` },
    });
    expect(bytes.status).toBe(200);
    expect(Buffer.from(await bytes.arrayBuffer()).equals(png(16, 16))).toBe(true);
    expect((await fetch(`${server.url}${avatar}`)).status).toBe(401);
    // Her other uploads stay hers.
    const other = await uploadFile(alice, png(4, 4), 'private.png');
    expect((await server.api.get(`/api/attachments/${other.id}`, as(stranger))).status).toBe(404);

    const cleared = await patchMe(alice, { avatar: null });
    expect(cleared.body.data!.avatar).toBeNull();
    expect((await server.api.get(`/api/attachments/${picture.id}`, as(stranger))).status).toBe(404);
  });

  it('refuses as avatar anything but one’s own picture, with one 400 whoever owns it', async () => {
    const [alice, bob] = await Promise.all([registerUser(server.api), registerUser(server.api)]);
    const bobs = await uploadFile(bob, png(8, 8), 'bob.png');
    const text = await uploadFile(alice, Buffer.from('not a face\n'), 'face.png');
    const svg = await uploadFile(
      alice,
      Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"></svg>'),
      'face.svg',
    );
    const refusals = [];
    for (const avatar of [bobs.id, text.id, svg.id, 'nosuchid000000000000000a']) {
      const response = await patchMe(alice, { avatar });
      expect(response.status, avatar).toBe(400);
      refusals.push(response.body);
    }
    expect(new Set(refusals.map((r) => JSON.stringify(r))).size).toBe(1);
    expect(refusals[0]).toMatchObject({ code: 'VALIDATION_ERROR', details: [{ path: 'avatar' }] });
    for (const avatar of ['', '../x', 7])
      expect((await patchMe(alice, { avatar })).status).toBe(400);

    // A picture whose message was deleted is on its way out: refused too.
    const conversation = await createConversation(server.api, alice);
    const gone = await uploadFile(alice, png(5, 5), 'gone.png');
    const message = await send(alice, conversation.id, 'soon gone', { attachments: [gone.id] });
    await server.api.delete(`/api/chat/messages/${message.id}`, as(alice));
    expect((await patchMe(alice, { avatar: gone.id })).status).toBe(400);
    // A picture already sent in a live message may be the avatar.
    const sent = await uploadFile(alice, png(6, 6), 'sent.png');
    await send(alice, conversation.id, 'here', { attachments: [sent.id] });
    expect((await patchMe(alice, { avatar: sent.id })).status).toBe(200);
  });

  it('keeps an avatar through the cleanup job; the one it replaced goes after UPLOAD_UNATTACHED_TTL', async () => {
    const alice = await registerUser(server.api);
    const [first, second, idle] = await Promise.all([
      uploadFile(alice, png(9, 9), 'first.png'),
      uploadFile(alice, png(10, 10), 'second.png'),
      uploadFile(alice, png(11, 11), 'idle.png'),
    ]);
    expect((await patchMe(alice, { avatar: first.id })).status).toBe(200);
    const cleanup = server.container.attachmentCleanup;
    await cleanup.sweep(new Date(Date.now() + 25 * HOUR));
    let files = await storedFiles();
    expect(files).toContain(first.filename);
    expect(files).not.toContain(idle.filename);
    expect(files).not.toContain(second.filename);

    const third = await uploadFile(alice, png(12, 12), 'third.png');
    expect((await patchMe(alice, { avatar: third.id })).status).toBe(200);
    await cleanup.sweep(new Date(Date.now() + 25 * HOUR));
    files = await storedFiles();
    expect(files).toContain(third.filename);
    expect(files).not.toContain(first.filename);
    expect((await server.api.get(`/api/attachments/${first.id}`, as(alice))).status).toBe(404);

    // An avatar sent in a message that is then deleted stays, as an avatar.
    const conversation = await createConversation(server.api, alice);
    const message = await send(alice, conversation.id, 'my face', { attachments: [third.id] });
    await server.api.delete(`/api/chat/messages/${message.id}`, as(alice));
    await cleanup.sweep(new Date(Date.now() + 25 * HOUR));
    expect(await storedFiles()).toContain(third.filename);
    const stranger = await registerUser(server.api);
    expect((await server.api.get(`/api/attachments/${third.id}`, as(stranger))).status).toBe(200);
  });

  it('an avatar set while the cleanup job runs is either kept or refused, never left dangling', async () => {
    const alice = await registerUser(server.api);
    const cleanup = server.container.attachmentCleanup;
    for (let round = 0; round < 5; round++) {
      const picture = await uploadFile(alice, png(3 + round, 3), `race${round}.png`);
      const [set] = await Promise.all([
        patchMe(alice, { avatar: picture.id }),
        cleanup.sweep(new Date(Date.now() + 25 * HOUR)),
      ]);
      expect([200, 400]).toContain(set.status);
      const me = (await server.api.get<Envelope<UserView>>('/api/auth/me', as(alice))).body.data!;
      if (me.avatar) {
        const content = await fetch(`${server.url}${me.avatar}`, {
          headers: { authorization: `Bearer ${alice.accessToken}` },
        });
        expect(content.status).toBe(200);
        await content.arrayBuffer();
      }
    }
  });
});

describe('POST /api/auth/password', () => {
  it('refuses a wrong current password with 403 and a weak new one with 400, changing nothing', async () => {
    const user = await registerUser(server.api);
    const other = await loginAgain(user);
    const wrong = await changePassword(user.accessToken, 'not-my-password', 'a-new-password-1');
    expect(wrong.status).toBe(403);
    expect(wrong.body.code).toBe('FORBIDDEN');
    const weak = await changePassword(user.accessToken, user.input.password, 'short');
    expect(weak.status).toBe(400);
    expect(await meStatus(other.accessToken)).toBe(200);
    expect((await login(user.input.email, user.input.password)).status).toBe(200);
  });

  it('ends every other session at once — REST, refresh and sockets within 2 s — and keeps the caller’s', async () => {
    const user = await registerUser(server.api);
    const [second, third] = await Promise.all([loginAgain(user), loginAgain(user)]);
    const [mine, theirs, alsoTheirs] = await Promise.all([
      sockets.connect(user),
      sockets.connect(second),
      sockets.connect(third),
    ]);
    const gone = Promise.all([disconnected(theirs), disconnected(alsoTheirs)]);
    const changed = await changePassword(user.accessToken, user.input.password, 'brand-new-pass-1');
    expect(changed.status).toBe(200);
    expect(changed.body.data).toEqual({ changed: true, revokedSessions: 2 });
    for (const ms of await gone) expect(ms).toBeLessThan(2_000);
    await settle(200);
    expect(mine.socket.connected).toBe(true);

    expect(await meStatus(user.accessToken)).toBe(200);
    expect(await meStatus(second.accessToken)).toBe(401);
    expect(await meStatus(third.accessToken)).toBe(401);
    const refresh = await server.api.post('/api/auth/refresh', {
      refreshToken: second.refreshToken,
    });
    expect(refresh.status).toBe(401);
    const sessions = await server.api.get<Envelope<Array<{ current: boolean }>>>(
      '/api/auth/sessions',
      as(user),
    );
    expect(sessions.body.data).toEqual([expect.objectContaining({ current: true })]);
    expect((await login(user.input.email, user.input.password)).status).toBe(401);
    expect((await login(user.input.email, 'brand-new-pass-1')).status).toBe(200);
  });

  it('two changes at once: one wins, the other changes nothing; no 5xx', async () => {
    const user = await registerUser(server.api);
    const second = await loginAgain(user);
    const results = await Promise.all([
      changePassword(user.accessToken, user.input.password, 'winner-number-one'),
      changePassword(second.accessToken, user.input.password, 'winner-number-two'),
    ]);
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    // The loser checked the old password against the new hash (403), or found it replaced (409).
    // (Or its session was already ended by the winner: 401.)
    expect([401, 403, 409]).toContain(statuses.find((s) => s !== 200));
    const winner = statuses[0] === 200 ? 'winner-number-one' : 'winner-number-two';
    const loser = statuses[0] === 200 ? 'winner-number-two' : 'winner-number-one';
    expect((await login(user.input.email, winner)).status).toBe(200);
    expect((await login(user.input.email, loser)).status).toBe(401);
    expect((await login(user.input.email, user.input.password)).status).toBe(401);
    // The winner's session lives on; the loser's was one of the "others".
    const [winnerToken, loserToken] =
      statuses[0] === 200
        ? [user.accessToken, second.accessToken]
        : [second.accessToken, user.accessToken];
    expect(await meStatus(winnerToken)).toBe(200);
    expect(await meStatus(loserToken)).toBe(401);
  });

  it('a login racing a change never leaves a session made with the old password alive', async () => {
    for (let round = 0; round < 3; round++) {
      const user = await registerUser(server.api);
      const [changed, ...logins] = await Promise.all([
        changePassword(user.accessToken, user.input.password, `changed-password-${round}`),
        ...Array.from({ length: 4 }, () => login(user.input.email, user.input.password)),
      ]);
      expect(changed.status).toBe(200);
      for (const response of logins) {
        expect([200, 401]).toContain(response.status);
        if (response.status === 200)
          expect(await meStatus(response.body.data!.accessToken)).toBe(401);
      }
      expect(await meStatus(user.accessToken)).toBe(200);
    }
  });
});

describe('DELETE /api/auth/me', () => {
  it('refuses a wrong password with 403 and deletes nothing', async () => {
    const user = await registerUser(server.api);
    const response = await deleteAccount(user.accessToken, 'not-my-password');
    expect(response.status).toBe(403);
    expect(await meStatus(user.accessToken)).toBe(200);
    expect((await deleteAccount(user.accessToken, '')).status).toBe(400);
    expect((await server.api.request('DELETE', '/api/auth/me', undefined, as(user))).status).toBe(
      400,
    );
  });

  it('deletes the account: sessions and sockets end, shared messages stay authorless, nothing else of the user remains', async () => {
    const [user, friend, host] = await Promise.all([
      registerUser(server.api),
      registerUser(server.api),
      registerUser(server.api),
    ]);
    const second = await loginAgain(user);
    // A refresh, so the session has a rotated-away token on record.
    const refreshed = (
      await server.api.post<Envelope<AuthData>>('/api/auth/refresh', {
        refreshToken: second.refreshToken,
      })
    ).body.data!;
    const sessionIds = (
      await selectRows<{ id: string }>(
        db(),
        sql`select id from user_sessions where user_id = ${user.user.id}`,
      )
    ).map((r) => r.id);
    expect(sessionIds.length).toBe(2);

    // Alone: a conversation with an AI answer, a file and a reaction; and one deleted earlier.
    const solo = await createConversation(server.api, user, { title: 'solo' });
    const soloFile = await uploadFile(user, png(7, 7), 'solo.png');
    const soloMessage = await send(user, solo.id, 'solo-secret-words', {
      attachments: [soloFile.id],
      ai: true,
    });
    await react(user, soloMessage.id, '🔒');
    const old = await createConversation(server.api, user, { title: 'old' });
    await send(user, old.id, 'old-secret-words');
    expect((await server.api.delete(`/api/conversations/${old.id}`, as(user))).status).toBe(200);

    // Shared: one the user owns with a friend, one a host owns with both of them.
    const owned = await createConversation(server.api, user, {
      title: 'owned',
      participantIds: [friend.user.id],
    });
    const sharedFile = await uploadFile(user, Buffer.from('shared notes\n'), 'notes.txt');
    const mine = await send(user, owned.id, 'user-words-in-shared', {
      attachments: [sharedFile.id],
      ai: true,
    });
    const theirs = await send(friend, owned.id, 'friend-words');
    await react(user, theirs.id, '👍');
    await react(friend, mine.id, '🎉');
    const hosted = await createConversation(server.api, host, {
      title: 'hosted',
      participantIds: [user.user.id, friend.user.id],
    });
    await send(user, hosted.id, 'user-words-in-hosted');
    // Uploads never sent, one of them the avatar.
    const unsent = await uploadFile(user, Buffer.from('draft\n'), 'draft.txt');
    const avatar = await uploadFile(user, png(13, 13), 'avatar.png');
    expect((await patchMe(user, { avatar: avatar.id })).status).toBe(200);
    await settle(300); // the AI answers finish

    const [userSocket, friendSocket] = await Promise.all([
      sockets.connect(second),
      sockets.connect(friend),
    ]);
    const gone = disconnected(userSocket);
    const response = await deleteAccount(user.accessToken, user.input.password);
    expect(response.status, response.text).toBe(200);
    expect(response.body).toEqual({ success: true, data: { deleted: true } });
    expect(await gone).toBeLessThan(2_000);

    // Signed out everywhere, and no way back in.
    expect(await meStatus(user.accessToken)).toBe(401);
    expect(await meStatus(refreshed.accessToken)).toBe(401);
    expect(
      (await server.api.post('/api/auth/refresh', { refreshToken: refreshed.refreshToken })).status,
    ).toBe(401);
    expect((await login(user.input.email, user.input.password)).status).toBe(401);
    const lookup = await server.api.get(
      `/api/users/lookup?username=${user.user.username}`,
      as(friend),
    );
    expect(lookup.status).toBe(404);

    // The friend saw the user leave both conversations and inherit the one the user owned.
    await friendSocket.next(
      'user:left',
      (p) => (p as { conversationId: string }).conversationId === owned.id,
    );
    await friendSocket.next(
      'user:left',
      (p) => (p as { conversationId: string }).conversationId === hosted.id,
    );
    await friendSocket.next(
      'conversation:updated',
      (p) => (p as { conversationId: string; ownerId?: string }).ownerId === friend.user.id,
    );
    const ownedNow = await server.api.get<Envelope<ConversationData>>(
      `/api/conversations/${owned.id}`,
      as(friend),
    );
    expect(ownedNow.body.data!.participants.map((p) => [p.userId, p.role])).toEqual([
      [friend.user.id, 'OWNER'],
    ]);
    const hostedNow = await server.api.get<Envelope<ConversationData>>(
      `/api/conversations/${hosted.id}`,
      as(host),
    );
    expect(hostedNow.body.data!.participants.map((p) => [p.userId, p.role]).sort()).toEqual(
      [
        [host.user.id, 'OWNER'],
        [friend.user.id, 'MEMBER'],
      ].sort(),
    );

    // Their words stay where others read them, from a deleted user, with the file they sent.
    const shown = await messagesOf(friend, owned.id);
    const kept = shown.find((m) => m.id === mine.id)!;
    expect(kept).toMatchObject({ userId: null, author: null, content: 'user-words-in-shared' });
    expect(kept.attachments.map((a) => a.id)).toEqual([sharedFile.id]);
    expect(kept.reactions).toEqual([
      expect.objectContaining({ emoji: '🎉', userIds: [friend.user.id] }),
    ]);
    expect(shown.find((m) => m.id === theirs.id)!.reactions).toEqual([]);
    expect(shown.some((m) => m.role === 'ASSISTANT')).toBe(true);
    const file = await fetch(`${server.url}${sharedFile.url}`, {
      headers: { authorization: `Bearer ${friend.accessToken}` },
    });
    expect(file.status).toBe(200);
    expect(await file.text()).toBe('shared notes\n');
    expect((await messagesOf(host, hosted.id)).map((m) => [m.userId, m.content])).toEqual([
      [null, 'user-words-in-hosted'],
    ]);

    // In the database: not one row anywhere names the user, their sessions, their solo
    // conversations or what was in them, or their unsent uploads.
    const traces = await tracesOf([
      user.user.id,
      user.input.email,
      user.user.username!,
      ...sessionIds,
      solo.id,
      old.id,
      soloMessage.id,
      'solo-secret-words',
      'old-secret-words',
      soloFile.id,
      unsent.id,
      avatar.id,
    ]);
    expect(traces).toEqual([]);
    const [remaining] = await selectRows<{ n: number }>(
      db(),
      sql`select count(*)::int as n from messages
          where content in ('user-words-in-shared', 'user-words-in-hosted') and user_id is null`,
    );
    expect(remaining!.n).toBe(2);
    const files = await storedFiles();
    expect(files).toContain(sharedFile.filename);
    for (const removed of [soloFile, unsent, avatar]) expect(files).not.toContain(removed.filename);
    expect(await conversationsWithoutOneOwner()).toEqual([]);
  });

  it('with the user’s and other people’s requests racing it: no 5xx, one OWNER per conversation, nothing of the user left', async () => {
    for (let round = 0; round < STEPS_MS.length; round++) {
      const [user, friend] = await Promise.all([
        registerUser(server.api),
        registerUser(server.api),
      ]);
      const second = await loginAgain(user);
      const shared = await createConversation(server.api, user, {
        participantIds: [friend.user.id],
      });
      const friendsOwn = await createConversation(server.api, friend);
      const theirs = await send(friend, shared.id, 'hello');
      await send(user, shared.id, 'hi');
      await createConversation(server.api, user, { title: 'alone' });
      const form = () => {
        const data = new FormData();
        data.append('file', new Blob(['late upload']), 'late.txt');
        return data;
      };

      // Round by round the others are spread wider over the deletion's run, so they land before
      // it, during it and after it.
      const step = STEPS_MS[round]!;
      const racers: Array<() => Promise<ApiResponse<unknown>>> = [
        () =>
          server.api.post(
            `/api/chat/conversations/${shared.id}/messages`,
            { content: 'racing', ai: true },
            as(second),
          ),
        () =>
          server.api.post('/api/conversations', { participantIds: [friend.user.id] }, as(second)),
        () =>
          server.api.post(`/api/chat/messages/${theirs.id}/reactions`, { emoji: '🏁' }, as(second)),
        () =>
          server.api.request('POST', '/api/attachments', undefined, {
            ...as(second),
            form: form(),
          }),
        () =>
          server.api.patch(
            '/api/auth/me',
            { username: `late_${round}_${user.user.id.slice(0, 6)}` },
            as(second),
          ),
        () => server.api.get('/api/auth/me/export', as(second)),
        () => login(user.input.email, user.input.password),
        () => server.api.post('/api/conversations', { participantIds: [user.user.id] }, as(friend)),
        () =>
          server.api.post(
            `/api/conversations/${friendsOwn.id}/participants`,
            { userId: user.user.id },
            as(friend),
          ),
        () =>
          server.api.post(
            `/api/chat/conversations/${shared.id}/messages`,
            { content: 'still here', ai: false },
            as(friend),
          ),
      ];
      const deletions = [
        deleteAccount(user.accessToken, user.input.password),
        deleteAccount(second.accessToken, user.input.password),
      ];
      const others = racers.map((race, i) => settle(i * step).then(race));
      const responses = [...(await Promise.all(deletions)), ...(await Promise.all(others))];
      for (const r of responses) expect(r.status, r.text.slice(0, 300)).toBeLessThan(500);
      expect(responses.slice(0, 2).map((r) => r.status)).toContain(200);
      await settle(300);

      expect(await tracesOf([user.user.id, user.input.email])).toEqual([]);
      expect(await conversationsWithoutOneOwner()).toEqual([]);
      const loginResponse = responses[8] as ApiResponse<Envelope<AuthData>>;
      if (loginResponse.status === 200)
        expect(await meStatus(loginResponse.body.data!.accessToken)).toBe(401);
      expect((await login(user.input.email, user.input.password)).status).toBe(401);
      // The friend's side goes on.
      expect((await server.api.get(`/api/conversations/${shared.id}`, as(friend))).status).toBe(
        200,
      );
    }
  }, 60_000);
  it('deletes an account while its answers are streaming: the shared one finishes, the solo one is gone', async () => {
    const [user, friend] = await Promise.all([registerUser(server.api), registerUser(server.api)]);
    const solo = await createConversation(server.api, user);
    const shared = await createConversation(server.api, user, { participantIds: [friend.user.id] });
    const slow = { kind: 'stream' as const, tokens: Array<string>(25).fill('word '), delayMs: 20 };
    ai.fake.script.push(slow, slow);
    const [inSolo, inShared] = await Promise.all([
      send(user, solo.id, 'answer me alone', { ai: true }),
      send(user, shared.id, 'answer us', { ai: true }),
    ]);
    const streaming = (messages: FullMessage[]) =>
      messages.some((m) => m.role === 'ASSISTANT' && m.status === 'SENDING');
    expect(streaming(await messagesOf(user, shared.id))).toBe(true);
    expect(streaming(await messagesOf(user, solo.id))).toBe(true);
    const response = await deleteAccount(user.accessToken, user.input.password);
    expect(response.status).toBe(200);
    let shown = await messagesOf(friend, shared.id);
    for (
      let waited = 0;
      shown.some((m) => m.status === 'SENDING') && waited < 5_000;
      waited += 100
    ) {
      await settle(100);
      shown = await messagesOf(friend, shared.id);
    }
    expect(shown.find((m) => m.id === inShared.id)).toMatchObject({ userId: null, author: null });
    const answer = shown.find((m) => m.role === 'ASSISTANT')!;
    expect(answer.status).toBe('SENT');
    expect(answer.content).toBe('word '.repeat(25));
    expect(await tracesOf([user.user.id, solo.id, inSolo.id])).toEqual([]);
  });

  it('a request that passed authentication before its user was deleted is a 409, never a 500', async () => {
    // The window between a request's authentication and its write, held open: the user's row
    // goes (as the deletion's last step does) while their session is still cached as live.
    const user = await registerUser(server.api);
    const friend = await registerUser(server.api);
    const conversation = await createConversation(server.api, friend);
    const theirs = await send(friend, conversation.id, 'react to me');
    expect(await meStatus(user.accessToken)).toBe(200);
    await db().execute(sql`delete from users where id = ${user.user.id}`);
    const create = await server.api.post('/api/conversations', {}, as(user));
    expect(create.status).toBe(409);
    expect(create.body).toMatchObject({ success: false, code: 'CONFLICT' });
    const add = await server.api.post(
      `/api/conversations/${conversation.id}/participants`,
      { userId: user.user.id },
      as(friend),
    );
    expect(add.status).toBe(404);
    const filesBefore = await storedFiles();
    const upload = await server.api.request('POST', '/api/attachments', undefined, {
      ...as(user),
      form: (() => {
        const data = new FormData();
        data.append('file', new Blob(['orphan?']), 'o.txt');
        return data;
      })(),
    });
    expect(upload.status).toBe(409);
    expect(await storedFiles()).toEqual(filesBefore);
    expect(await tracesOf([user.user.id])).toEqual([]);
    expect((await react(friend, theirs.id, '👍')).status).toBe(201);
  });
});

describe('GET /api/auth/me/export', () => {
  async function exportOf(user: { accessToken: string }) {
    const response = await fetch(`${server.url}/api/auth/me/export`, {
      headers: { authorization: `Bearer ${user.accessToken}` },
    });
    const text = await response.text();
    return { response, text, document: JSON.parse(text) as ExportDocument };
  }

  it('holds everything the user owns or can read, every branch included, and nothing else', async () => {
    const [user, friend, stranger] = await Promise.all([
      registerUser(server.api),
      registerUser(server.api),
      registerUser(server.api),
    ]);
    await loginAgain(user);
    const shared = await createConversation(server.api, user, {
      title: 'shared',
      participantIds: [friend.user.id],
    });
    const file = await uploadFile(user, png(6, 4), 'pic.png');
    const question = await send(user, shared.id, 'first version', { attachments: [file.id] });
    const answer = await send(friend, shared.id, 'a reply');
    await react(friend, question.id, '👍');
    // Edit-and-resend: a second version, the first leaves the active branch (an AI answer follows).
    const edited = await server.api.post<Envelope<{ message: FullMessage }>>(
      `/api/chat/messages/${question.id}/edit-branch`,
      { content: 'second version' },
      as(user),
    );
    expect(edited.status, edited.text).toBe(201);
    const archived = await createConversation(server.api, user, { title: 'archived' });
    await server.api.post(
      `/api/conversations/${archived.id}/archive`,
      { archived: true },
      as(user),
    );
    const deleted = await createConversation(server.api, user, { title: 'deleted' });
    await send(user, deleted.id, 'deleted-conversation-words');
    await server.api.delete(`/api/conversations/${deleted.id}`, as(user));
    const elsewhere = await createConversation(server.api, friend, {
      title: 'not-for-user',
      participantIds: [stranger.user.id],
    });
    await send(friend, elsewhere.id, 'words-the-user-cannot-read');
    const draft = await uploadFile(user, Buffer.from('draft\n'), 'draft.txt');
    await settle(300);

    const { response, text, document } = await exportOf(user);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('content-disposition')).toMatch(
      /^attachment; filename="parley-export-/,
    );
    // Streamed: no length known up front.
    expect(response.headers.get('content-length')).toBeNull();
    expect(response.headers.get('transfer-encoding')).toBe('chunked');

    expect(document.format).toBe('parley-export/1');
    expect(document.user).toMatchObject({ id: user.user.id, email: user.input.email });
    expect(document.sessions).toHaveLength(2);
    expect(document.conversations.map((c) => c.id).sort()).toEqual([shared.id, archived.id].sort());
    const exported = document.conversations.find((c) => c.id === shared.id)!;
    expect(exported.participants.map((p) => p.userId).sort()).toEqual(
      [user.user.id, friend.user.id].sort(),
    );
    const byId = new Map(exported.messages.map((m) => [m.id, m]));
    expect(byId.get(question.id)).toMatchObject({ content: 'first version', superseded: true });
    expect(byId.get(question.id)!.reactions).toEqual([
      expect.objectContaining({ emoji: '👍', userIds: [friend.user.id] }),
    ]);
    expect(byId.get(question.id)!.attachments).toEqual([
      expect.objectContaining({ id: file.id, mimeType: 'image/png', size: file.size }),
    ]);
    expect(byId.get(edited.body.data!.message.id)).toMatchObject({
      content: 'second version',
      superseded: false,
    });
    expect(byId.get(answer.id)).toMatchObject({ content: 'a reply' });
    expect(exported.messages.some((m) => m.role === 'ASSISTANT')).toBe(true);
    // Oldest first, as a conversation reads.
    const times = exported.messages.map((m) => m.createdAt);
    expect([...times].sort()).toEqual(times);
    expect(document.uploads.map((u) => [u.id, u.messageId]).sort()).toEqual(
      [
        [file.id, question.id],
        [draft.id, null],
      ].sort(),
    );

    // No secret, and nothing the user cannot read.
    const secrets = await selectRows<{ value: string }>(
      db(),
      sql`select token as value from user_sessions where user_id = ${user.user.id}
          union all select password_hash from users where id = ${user.user.id}`,
    );
    expect(secrets.length).toBe(3);
    for (const { value } of secrets) expect(text).not.toContain(value);
    for (const forbidden of [
      'passwordHash',
      'password_hash',
      elsewhere.id,
      'words-the-user-cannot-read',
      deleted.id,
      'deleted-conversation-words',
      stranger.user.id,
    ])
      expect(text).not.toContain(forbidden);
  });

  it('pages through many conversations and long ones, each message once and in order', async () => {
    const user = await registerUser(server.api);
    const long = await createConversation(server.api, user, { title: 'long' });
    // 450 messages (more than two pages), three at a time sharing a timestamp, so pages break
    // inside a tie; and 45 more conversations (more than two pages of them).
    await db().execute(sql`
      insert into messages (id, conversation_id, user_id, content, role, created_at)
      select 'bulk' || lpad(i::text, 6, '0'), ${long.id}, ${user.user.id}, 'bulk message ' || i,
             'USER'::"MessageRole", timestamptz '2026-01-01' + (i / 3) * interval '1 millisecond'
      from generate_series(1, 450) as i`);
    await db().execute(sql`
      with made as (
        insert into conversations (id, title)
        select 'bulkconv' || lpad(i::text, 4, '0'), 'bulk ' || i from generate_series(1, 45) as i
        returning id)
      insert into conversation_participants (id, conversation_id, user_id, role)
      select 'p' || made.id, made.id, ${user.user.id}, 'OWNER'::"ParticipantRole" from made`);

    const { document } = await exportOf(user);
    expect(document.conversations).toHaveLength(46);
    expect(new Set(document.conversations.map((c) => c.id)).size).toBe(46);
    const messages = document.conversations.find((c) => c.id === long.id)!.messages;
    expect(messages.map((m) => m.content)).toEqual(
      Array.from({ length: 450 }, (_, i) => `bulk message ${i + 1}`),
    );
  });

  it('stops reading when the client goes away, and the next export of the user runs', async () => {
    const user = await registerUser(server.api);
    const long = await createConversation(server.api, user, { title: 'long' });
    await db().execute(sql`
      insert into messages (id, conversation_id, user_id, content, role)
      select 'gone' || lpad(i::text, 6, '0'), ${long.id}, ${user.user.id}, repeat('x', 2000),
             'USER'::"MessageRole"
      from generate_series(1, 2000) as i`);
    const controller = new AbortController();
    const response = await fetch(`${server.url}/api/auth/me/export`, {
      headers: { authorization: `Bearer ${user.accessToken}` },
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    const first = (await reader.read()) as { value: Uint8Array };
    expect(new TextDecoder().decode(first.value)).toMatch(/^\{"format":"parley-export\/1"/);
    controller.abort();
    await settle(200);
    // The user's one export slot was given back: the next one runs to the end.
    const again = await exportOf(user);
    expect(again.document.conversations[0]!.messages).toHaveLength(2000);
    expect((await server.api.get('/health')).status).toBe(200);
  });

  it('refuses the signed-out and those whose session ended', async () => {
    expect((await server.api.get('/api/auth/me/export')).status).toBe(401);
    const user = await registerUser(server.api);
    await server.api.post('/api/auth/logout', undefined, as(user));
    expect((await server.api.get('/api/auth/me/export', as(user))).status).toBe(401);
  });
});

describe('GET /api/users/lookup', () => {
  it('finds exact usernames ignoring case, nothing by prefix, part or email, and never shows an email', async () => {
    const [asker, target] = await Promise.all([registerUser(server.api), registerUser(server.api)]);
    const name = target.user.username!;
    const found = await server.api.get<Envelope<UserView>>(
      `/api/users/lookup?username=${name.toUpperCase()}`,
      as(asker),
    );
    expect(found.status).toBe(200);
    expect(found.body.data).toEqual({ id: target.user.id, username: name, avatar: null });
    expect(found.text).not.toContain(target.input.email);
    for (const query of [name.slice(0, -1), `${name}x`, name.slice(2)]) {
      const response = await server.api.get(`/api/users/lookup?username=${query}`, as(asker));
      expect(response.status, query).toBe(404);
    }
    const byEmail = await server.api.get(
      `/api/users/lookup?username=${encodeURIComponent(target.input.email)}`,
      as(asker),
    );
    expect(byEmail.status).toBe(400);
    expect((await server.api.get('/api/users/lookup', as(asker))).status).toBe(400);
    expect((await server.api.get(`/api/users/lookup?username=${name}`)).status).toBe(401);
  });

  it(`is limited to LOOKUP_RATE_LIMIT (${LOOKUP_LIMIT}) per user and window, even at once`, async () => {
    const [asker, other] = await Promise.all([registerUser(server.api), registerUser(server.api)]);
    const responses = await Promise.all(
      Array.from({ length: LOOKUP_LIMIT + 4 }, (_, i) =>
        server.api.get(`/api/users/lookup?username=nobody_${i}`, as(asker)),
      ),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 404)).toHaveLength(LOOKUP_LIMIT);
    expect(statuses.filter((s) => s === 429)).toHaveLength(4);
    expect(
      Number(responses.find((r) => r.status === 429)!.headers.get('retry-after')),
    ).toBeGreaterThan(0);
    // Another user's budget is their own.
    expect((await server.api.get('/api/users/lookup?username=nobody', as(other))).status).toBe(404);
  });
});
