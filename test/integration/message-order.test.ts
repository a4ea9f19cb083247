// A conversation's messages sort in the order they were written (committed), not the order their
// transactions began: whoever reads right after a message was written sees every message sorting
// before it. An answer's context is read that way (MessageRepository.history), so a question
// that sorted before another but was not yet visible to its answer was missing from it (a CI run
// of test/api/branches.test.ts on PostgreSQL caught one in 12 concurrent questions).
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { GenerationRepository } from '../../src/repositories/generation.repository.js';
import { MessageRepository, type NewMessage } from '../../src/repositories/message.repository.js';
import { openTestDatabase, type TestDatabase } from '../support/database.js';
import { selectRows } from '../support/sql.js';

let testDb: TestDatabase;
beforeAll(async () => {
  testDb = await openTestDatabase();
  const db = testDb.database.db;
  await db.execute(
    sql`insert into users (id, email) values ('u1', 'u1@x.test'), ('u2', 'u2@x.test')`,
  );
  await db.execute(sql`insert into conversations (id) values ('c1'), ('c2')`);
  await db.execute(sql`insert into conversation_participants (id, conversation_id, user_id, role) values
    ('p1', 'c1', 'u1', 'OWNER'), ('p2', 'c1', 'u2', 'MEMBER'),
    ('p3', 'c2', 'u1', 'OWNER'), ('p4', 'c2', 'u2', 'MEMBER')`);
});
afterAll(async () => {
  await testDb.dispose();
});

const onPostgres = inject('dbKind') === 'postgres';
// PGlite runs one transaction at a time: two cannot interleave there.
const onlyWhere = (condition: boolean) =>
  condition ? it : ((() => undefined) as unknown as typeof it);

const message = (conversationId: string, userId: string, content: string): NewMessage => ({
  conversationId,
  userId,
  content,
  role: 'USER',
  type: 'TEXT',
});

async function send(repo: MessageRepository, values: NewMessage) {
  const sent = await repo.createAsParticipant(values);
  if (!sent.ok) throw new Error(`send refused: ${sent.reason}`);
  return sent.message;
}

it('orders messages written in one transaction as written, each a millisecond or more apart', async () => {
  const db = testDb.database.db;
  // now() is the same for the whole transaction: times taken from it tie, and ties sort by id.
  const written = await db.transaction(async (tx) => {
    const repo = new MessageRepository(tx);
    const out = [];
    for (let i = 0; i < 20; i++) out.push(await send(repo, message('c1', 'u1', `m${i}`)));
    return out;
  });
  for (let i = 1; i < written.length; i++) {
    expect(written[i]!.createdAt.getTime()).toBeGreaterThan(written[i - 1]!.createdAt.getTime());
  }
  const history = await new MessageRepository(db).history(written.at(-1)!);
  expect(history.map((m) => m.content)).toEqual(written.map((m) => m.content));
});

onlyWhere(onPostgres)(
  'sorts a message written by a transaction begun earlier after one committed meanwhile, and its answer after both',
  async () => {
    const db = testDb.database.db;
    const repo = new MessageRepository(db);
    let seenByFirst: string[] = [];
    let first: Awaited<ReturnType<typeof send>> | undefined;
    const [late, answer] = await db.transaction(async (tx) => {
      await tx.execute(sql`select 1`); // the transaction (and its now()) has begun
      await new Promise((resolve) => setTimeout(resolve, 20));
      // Meanwhile another message is written and committed, and read after as an answer would.
      first = await send(repo, message('c2', 'u2', 'committed first'));
      seenByFirst = (await repo.history(first)).map((m) => m.content);
      const lateMessage = await send(
        new MessageRepository(tx),
        message('c2', 'u1', 'written later'),
      );
      // An answer to the late one, in a transaction begun before "committed first" too.
      const started = await new GenerationRepository(tx).start({
        id: 'g1',
        conversationId: 'c2',
        userMessageId: lateMessage.id,
        requestedBy: 'u1',
        provider: 'openai',
        model: 'm',
      });
      return [lateMessage, started.message] as const;
    });
    const all = await selectRows<{ content: string }>(
      db,
      sql`select content from messages where conversation_id = 'c2' order by created_at, id`,
    );
    const order = all.map((r) => r.content);
    expect(order).toEqual(['committed first', 'written later', '']);
    // Everything sorting before the first was visible to a read right after it committed.
    expect(seenByFirst).toEqual(order.slice(0, 1));
    expect(late.createdAt.getTime()).toBeGreaterThan(first!.createdAt.getTime());
    expect(answer.createdAt.getTime()).toBeGreaterThan(late.createdAt.getTime());
  },
);
