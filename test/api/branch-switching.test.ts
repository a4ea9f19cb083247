// Issue 11 (SPEC §4, §9): switching between branches. POST /messages/:id/activate makes a
// version the chosen one of its group; the active branch, the version numbers in message views,
// every participant's socket and the next answer's context follow it. Concurrent switches and a
// switch racing a regenerate leave one chosen version per group and a consistent tree; migration
// 0008 marks the newest version of each existing group chosen.
import { readdir, readFile } from 'node:fs/promises';
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createConversation,
  registerUser,
  type StoredMessage,
  type RegisteredUser,
} from '../factories.js';
import type { ApiResponse, Envelope } from '../support/api-client.js';
import { startFakeAiServer, type FakeAiServer } from '../support/ai.js';
import type { TestServer } from '../support/server.js';
import { selectRows } from '../support/sql.js';
import { connectAs, settle, type RecordingSocket } from '../support/sockets.js';

type Stored = StoredMessage;
interface Switch {
  conversationId: string;
  messageId: string;
  active: string[];
  superseded: string[];
}
type Sent = { message: Stored; generation: { id: string; messageId: string } };

let ai: FakeAiServer;
let server: TestServer;
const open: RecordingSocket[] = [];

beforeAll(async () => {
  ai = await startFakeAiServer({ AI_MAX_PENDING_PER_USER: '10' });
  server = ai.server;
  ai.fake.fallback = { kind: 'stream', tokens: ['an', ' answer'] };
});
afterAll(async () => {
  await ai.close();
});
afterEach(() => {
  for (const socket of open.splice(0)) socket.close();
  ai.fake.script.splice(0);
});

const say = (text: string) => ({ kind: 'stream' as const, tokens: [text] });

async function room(people = 2) {
  const users = await Promise.all(Array.from({ length: people }, () => registerUser(server.api)));
  const conversation = await createConversation(server.api, users[0]!, {
    participantIds: users.slice(1).map((u) => u.user.id),
  });
  return { users: users as [RegisteredUser, RegisteredUser, ...RegisteredUser[]], conversation };
}

async function list(user: RegisteredUser, conversationId: string, branch: 'all' | 'active') {
  const page = await server.api.get<Envelope<{ messages: Stored[]; hasMore: boolean }>>(
    `/api/chat/conversations/${conversationId}/messages?branch=${branch}&limit=100`,
    { token: user.accessToken },
  );
  expect(page.body.data!.hasMore).toBe(false);
  return page.body.data!.messages;
}

async function waitDone(user: RegisteredUser, conversationId: string) {
  for (let i = 0; i < 200; i++) {
    const all = await list(user, conversationId, 'all');
    if (all.every((m) => m.status !== 'SENDING')) return all;
    await settle(30);
  }
  throw new Error('answers did not finish');
}

async function ask(user: RegisteredUser, conversationId: string, content: string) {
  const sent = await server.api.post<Envelope<Sent>>(
    `/api/chat/conversations/${conversationId}/messages`,
    { content },
    { token: user.accessToken },
  );
  expect(sent.status).toBe(201);
  await waitDone(user, conversationId);
  return sent.body.data!;
}

async function regenerate(user: RegisteredUser, answerId: string, conversationId?: string) {
  const response = await server.api.post<Envelope<{ generation: { messageId: string } }>>(
    `/api/chat/messages/${answerId}/regenerate`,
    undefined,
    { token: user.accessToken },
  );
  expect(response.status).toBe(201);
  if (conversationId) await waitDone(user, conversationId);
  return response.body.data!.generation.messageId;
}

function activate(user: RegisteredUser, messageId: string): Promise<ApiResponse<Envelope<Switch>>> {
  return server.api.post<Envelope<Switch>>(`/api/chat/messages/${messageId}/activate`, undefined, {
    token: user.accessToken,
  });
}

async function activated(user: RegisteredUser, messageId: string): Promise<Switch> {
  const response = await activate(user, messageId);
  expect(response.status, response.text).toBe(200);
  return response.body.data!;
}

/**
 * The tree as stored, checked: each version group has exactly one chosen version, and a message
 * is off the active branch exactly when it is a version not chosen or replies to one that is off.
 */
async function checkedTree(conversationId: string) {
  const rows = await selectRows<{
    id: string;
    parent_id: string | null;
    alternative_of: string | null;
    chosen: boolean | null;
    superseded: boolean;
  }>(
    server.container.database.db,
    sql`select id, parent_id, alternative_of, chosen, superseded from messages
        where conversation_id = ${conversationId}`,
  );
  const byId = new Map(rows.map((r) => [r.id, r]));
  const groups = new Map<string, typeof rows>();
  for (const row of rows) {
    if (row.chosen === null) continue;
    const root = row.alternative_of ?? row.id;
    groups.set(root, [...(groups.get(root) ?? []), row]);
  }
  for (const [root, versions] of groups) {
    expect(versions.length, `group ${root}`).toBeGreaterThan(1);
    expect(versions.filter((v) => v.chosen).length, `chosen in ${root}`).toBe(1);
  }
  const off = (id: string | null): boolean => {
    const row = id ? byId.get(id) : undefined;
    return row ? row.chosen === false || off(row.parent_id) : false;
  };
  for (const row of rows) expect(row.superseded, `superseded of ${row.id}`).toBe(off(row.id));
  return byId;
}

describe('switching between branches', () => {
  it('back to the first answer: the branch, the version numbers, every socket and the next answer follow', async () => {
    const { users, conversation } = await room();
    const [a, b] = users;
    const watcher = await connectAs(server.url, b.accessToken);
    open.push(watcher);
    ai.fake.script.push(say('first answer'), say('second answer'), say('answer to the follow-up'));
    const { message: question, generation } = await ask(a, conversation.id, 'question');
    const first = generation.messageId;
    const second = await regenerate(b, first, conversation.id);

    // The new version's message:new numbers it, and a page numbers both.
    const announced = (await watcher.next(
      'message:new',
      (p) => (p as { message: Stored }).message.id === second,
    )) as { message: Stored };
    expect(announced.message.versions).toEqual({
      number: 2,
      count: 2,
      previousId: first,
      nextId: null,
    });
    const all = await list(a, conversation.id, 'all');
    expect(all.map((m) => [m.id, m.versions])).toEqual([
      [question.id, null],
      [first, { number: 1, count: 2, previousId: null, nextId: second }],
      [second, { number: 2, count: 2, previousId: first, nextId: null }],
    ]);
    expect((await list(a, conversation.id, 'active')).map((m) => m.content)).toEqual([
      'question',
      'second answer',
    ]);

    expect(await activated(a, first)).toEqual({
      conversationId: conversation.id,
      messageId: first,
      active: [first],
      superseded: [second],
    });
    expect(await watcher.next('branch:switched')).toEqual({
      conversationId: conversation.id,
      messageId: first,
      active: [first],
      superseded: [second],
      by: a.user.id,
    });
    expect((await list(b, conversation.id, 'active')).map((m) => m.content)).toEqual([
      'question',
      'first answer',
    ]);
    await checkedTree(conversation.id);

    // Choosing the version already chosen changes nothing and tells no one.
    expect(await activated(b, first)).toMatchObject({ active: [], superseded: [] });
    await settle(200);
    expect(watcher.of('branch:switched')).toHaveLength(1);

    // The next answer reads the branch as it is now: the first answer, not the second.
    const before = ai.fake.requests.length;
    await ask(a, conversation.id, 'follow-up');
    const asked = ai.fake.requests.slice(before);
    expect(asked).toHaveLength(1);
    expect(asked[0]!.body.messages.map((m) => m.content)).toEqual([
      'question',
      'first answer',
      'follow-up',
    ]);
  });

  it('an edited question comes back with the answer chosen under it; a version off the branch brings its path back', async () => {
    const { users, conversation } = await room();
    const [a, b] = users;
    ai.fake.script.push(say('a1'), say('a1 again'), say('b1'));
    const { message: q1, generation } = await ask(a, conversation.id, 'q1');
    const a1 = generation.messageId;
    const a1again = await regenerate(a, a1, conversation.id);
    const edited = await server.api.post<Envelope<Sent>>(
      `/api/chat/messages/${q1.id}/edit-branch`,
      { content: 'q1 edited' },
      { token: a.accessToken },
    );
    expect(edited.status).toBe(201);
    const { message: q1edited, generation: answerToEdit } = edited.body.data!;
    const b1 = answerToEdit.messageId;
    await waitDone(a, conversation.id);
    const contents = async () => (await list(a, conversation.id, 'active')).map((m) => m.content);
    expect(await contents()).toEqual(['q1 edited', 'b1']);

    // Back to the question as first written: the answer chosen under it (the regenerated one)
    // comes back with it, the first answer stays off.
    expect(await activated(b, q1.id)).toMatchObject({
      active: [q1.id, a1again],
      superseded: [q1edited.id, b1],
    });
    expect(await contents()).toEqual(['q1', 'a1 again']);
    await checkedTree(conversation.id);

    // A version inside that branch.
    expect(await activated(a, a1)).toMatchObject({ active: [a1], superseded: [a1again] });
    expect(await contents()).toEqual(['q1', 'a1']);
    await checkedTree(conversation.id);

    // The edit again: its own answer comes back, the original question leaves with its answer.
    expect(await activated(a, q1edited.id)).toMatchObject({
      active: [q1edited.id, b1],
      superseded: [q1.id, a1],
    });
    expect(await contents()).toEqual(['q1 edited', 'b1']);

    // A version whose question is off the branch: the branch becomes the path to it.
    expect(await activated(a, a1again)).toMatchObject({
      active: [q1.id, a1again],
      superseded: [q1edited.id, b1],
    });
    expect(await contents()).toEqual(['q1', 'a1 again']);
    const tree = await checkedTree(conversation.id);
    expect(tree.get(a1)).toMatchObject({ chosen: false, superseded: true });

    // The edit's answer has no other version: nothing to switch to.
    const none = await activate(a, b1);
    expect(none.status).toBe(409);
    expect(none.body).toMatchObject({ success: false, code: 'CONFLICT' });
  });

  it('refuses outsiders (403), unknown and deleted messages (404), messages without versions (409)', async () => {
    const { users, conversation } = await room();
    const [a] = users;
    const outsider = await registerUser(server.api);
    const { message: question, generation } = await ask(a, conversation.id, 'question');
    const first = generation.messageId;
    const second = await regenerate(a, first, conversation.id);

    expect((await activate(outsider, first)).status).toBe(403);
    expect((await activate(a, 'nosuchmessage0000000000000')).status).toBe(404);
    const plain = await activate(a, question.id);
    expect(plain.status).toBe(409);
    expect(plain.body.error).toMatch(/no other versions/);

    // The owner deletes the first answer: a deleted version cannot be chosen.
    const deleted = await server.api.delete(`/api/chat/messages/${first}`, {
      token: a.accessToken,
    });
    expect(deleted.status).toBe(200);
    expect((await activate(a, first)).status).toBe(404);
    // Nothing changed for the refusals.
    const tree = await checkedTree(conversation.id);
    expect(tree.get(second)).toMatchObject({ chosen: true, superseded: false });
  });

  it('refuses (409) while an answer that would join or leave the branch is being written', async () => {
    const { users, conversation } = await room();
    const [a, b] = users;
    const { generation } = await ask(a, conversation.id, 'question');
    const first = generation.messageId;
    ai.fake.script.push({ kind: 'hang' });
    const writing = await server.api.post<
      Envelope<{ generation: { id: string; messageId: string } }>
    >(`/api/chat/messages/${first}/regenerate`, undefined, { token: b.accessToken });
    expect(writing.status).toBe(201);
    const running = writing.body.data!.generation;

    const refused = await activate(a, first);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatch(/still being written/);
    const tree = await checkedTree(conversation.id);
    expect(tree.get(running.messageId)).toMatchObject({ chosen: true, superseded: false });

    const stopped = await server.api.post(`/api/chat/generations/${running.id}/stop`, undefined, {
      token: a.accessToken,
    });
    expect(stopped.status).toBe(200);
    await waitDone(a, conversation.id);
    expect(await activated(a, first)).toMatchObject({
      active: [first],
      superseded: [running.messageId],
    });
    await checkedTree(conversation.id);
  });
});

describe('concurrency', () => {
  it('two switches of one group at once, to different versions: one chosen version, a consistent tree', async () => {
    const { users, conversation } = await room(3);
    const [a, b] = users;
    const c = users[2]!;
    const { generation } = await ask(a, conversation.id, 'question');
    // A reply someone chose to the answer goes with it, whichever version wins.
    const versions = [generation.messageId];
    versions.push(await regenerate(a, versions[0]!, conversation.id));
    versions.push(await regenerate(b, versions[0]!, conversation.id));
    for (const id of versions) {
      const reply = await server.api.post(
        `/api/chat/conversations/${conversation.id}/messages`,
        { content: `about ${id}`, parentId: id, ai: false },
        { token: c.accessToken },
      );
      expect(reply.status).toBe(201);
    }
    for (let round = 0; round < 6; round++) {
      const wanted = [versions[round % 3]!, versions[(round + 1) % 3]!];
      const results = await Promise.all([activate(a, wanted[0]!), activate(b, wanted[1]!)]);
      expect(results.map((r) => r.status)).toEqual([200, 200]);
      const tree = await checkedTree(conversation.id);
      const shown = versions.filter((id) => !tree.get(id)!.superseded);
      expect(shown).toHaveLength(1);
      expect(wanted).toContain(shown[0]);
      const active = await list(a, conversation.id, 'active');
      expect(active.map((m) => m.content).slice(-1)).toEqual([`about ${shown[0]}`]);
      expect(active).toHaveLength(3);
    }
  });

  it('a switch racing a regenerate: the new version ends up chosen either way', async () => {
    const { users, conversation } = await room();
    const [a, b] = users;
    const { generation } = await ask(a, conversation.id, 'question');
    const first = generation.messageId;
    const versions = [first, await regenerate(a, first, conversation.id)];
    for (let round = 0; round < 4; round++) {
      // The new answer hangs until stopped, so a switch that comes after it is refused (409).
      ai.fake.script.push({ kind: 'hang' });
      const [switched, regenerated] = await Promise.all([
        activate(a, versions[round % versions.length]!),
        server.api.post<Envelope<{ generation: { id: string; messageId: string } }>>(
          `/api/chat/messages/${versions.at(-1)!}/regenerate`,
          undefined,
          { token: b.accessToken },
        ),
      ]);
      expect(regenerated.status).toBe(201);
      expect([200, 409]).toContain(switched.status);
      const { id, messageId } = regenerated.body.data!.generation;
      versions.push(messageId);
      await server.api.post(`/api/chat/generations/${id}/stop`, undefined, {
        token: a.accessToken,
      });
      await waitDone(a, conversation.id);
      const tree = await checkedTree(conversation.id);
      expect(versions.filter((v) => !tree.get(v)!.superseded)).toEqual([messageId]);
    }
  });
});

describe('migration 0008 of groups written before a version could be chosen', () => {
  it('marks the newest version of each group chosen, the others not, and plain messages null', async () => {
    const { db } = server.container.database;
    const { users, conversation } = await room(1);
    const [owner] = users;
    const c = conversation.id;
    const o = owner.user.id;
    // As the code before it wrote them: q1 edited into q1b (q1 and its answers off the branch),
    // q1's answer regenerated once (x2 the newer), q1b's answer regenerated twice (y3 newest).
    const id = (name: string) => `${c}x${name}`;
    const row = (
      name: string,
      role: 'USER' | 'ASSISTANT',
      parent: string | null,
      first: string | null,
      superseded: boolean,
      second: number,
    ) =>
      sql`(${id(name)}, ${c}, ${role === 'USER' ? o : null}, ${name}, ${role}, 'SENT', ${parent && id(parent)}, ${first && id(first)}, ${superseded}, ${new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString()}::timestamptz)`;
    await db.execute(sql`
      insert into messages (id, conversation_id, user_id, content, role, status, parent_id, alternative_of, superseded, created_at)
      values ${sql.join(
        [
          row('q1', 'USER', null, null, true, 1),
          row('x1', 'ASSISTANT', 'q1', null, true, 2),
          row('x2', 'ASSISTANT', 'q1', 'x1', true, 3),
          row('q1b', 'USER', null, 'q1', false, 4),
          row('y1', 'ASSISTANT', 'q1b', null, true, 5),
          row('y2', 'ASSISTANT', 'q1b', 'y1', true, 6),
          row('y3', 'ASSISTANT', 'q1b', 'y1', false, 7),
          row('p', 'USER', null, null, false, 8),
        ],
        sql`, `,
      )}`);
    const migrations = new URL('../../src/db/migrations/', import.meta.url);
    const name = (await readdir(migrations)).find((f) => f.endsWith('_chosen_versions.sql'));
    if (!name) throw new Error('no *_chosen_versions.sql migration');
    const statements = (await readFile(new URL(name, migrations), 'utf8')).split(
      '--> statement-breakpoint',
    );
    // The column and index were made with the database; before the data step every row had no
    // value in it (this database's other tests chose versions: forget those too).
    await db.execute(sql`update messages set chosen = null`);
    const steps = statements.filter((s) => /^\s*(--.*\n\s*)*(WITH|UPDATE)/i.test(s));
    expect(steps).toHaveLength(1);
    for (const step of steps) await db.execute(sql.raw(step));

    const tree = await checkedTree(c);
    const chosen = (name: string) => tree.get(id(name))!.chosen;
    expect(['q1', 'q1b', 'x1', 'x2', 'y1', 'y2', 'y3', 'p'].map(chosen)).toEqual([
      false,
      true,
      false,
      true,
      false,
      false,
      true,
      null,
    ]);
    // Choosing the first question back brings the answer that was newest under it.
    expect(await activated(owner, id('q1'))).toMatchObject({
      active: [id('q1'), id('x2')],
      superseded: [id('q1b'), id('y3')],
    });
    await checkedTree(c);
  });
});
