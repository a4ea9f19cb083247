// The one-owner migration (`*_one_owner.sql`) repairs what the racy membership code of earlier
// versions could leave behind, then creates the index that refuses a second OWNER: run here on
// a database with the index dropped and such rows put back.
import { readdir, readFile } from 'node:fs/promises';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openTestDatabase, type TestDatabase } from '../support/database.js';
import { selectRows } from '../support/sql.js';

let testDb: TestDatabase;
beforeAll(async () => {
  testDb = await openTestDatabase();
});
afterAll(async () => {
  await testDb.dispose();
});

const migrations = new URL('../../src/db/migrations/', import.meta.url);

/** Found by name, not number: migrations written on other branches may renumber it. */
async function oneOwnerMigration(): Promise<string[]> {
  const name = (await readdir(migrations)).find((file) => file.endsWith('_one_owner.sql'));
  if (!name) throw new Error('no *_one_owner.sql migration');
  return (await readFile(new URL(name, migrations), 'utf8')).split('--> statement-breakpoint');
}

it('demotes extra owners, hands ownerless conversations on, deletes empty ones, then indexes', async () => {
  const db = testDb.database.db;
  await db.execute(sql`drop index conversation_participants_one_owner_key`);
  await db.execute(sql`insert into users (id, email) values
    ('u1', 'u1@x.test'), ('u2', 'u2@x.test'), ('u3', 'u3@x.test'), ('u4', 'u4@x.test')`);
  // two-owners: u1 owned it first, u2 too by a race. ownerless: u2 (MEMBER, earlier) and u3
  // (ADMIN, later): the admin inherits. empty: nobody. gone: deleted, ownerless, left alone.
  await db.execute(sql`insert into conversations (id, is_deleted) values
    ('two-owners', false), ('ownerless', false), ('empty', false), ('gone', true)`);
  await db.execute(sql`insert into conversation_participants (id, conversation_id, user_id, role, joined_at) values
    ('p1', 'two-owners', 'u1', 'OWNER', '2025-01-01'), ('p2', 'two-owners', 'u2', 'OWNER', '2025-01-02'),
    ('p3', 'two-owners', 'u3', 'MEMBER', '2025-01-03'),
    ('p4', 'ownerless', 'u2', 'MEMBER', '2025-01-01'), ('p5', 'ownerless', 'u3', 'ADMIN', '2025-01-02'),
    ('p6', 'ownerless', 'u4', 'ADMIN', '2025-01-03'),
    ('p7', 'gone', 'u1', 'MEMBER', '2025-01-01')`);

  for (const statement of await oneOwnerMigration()) await db.execute(sql.raw(statement));

  const roles = await selectRows<{ conversation_id: string; user_id: string; role: string }>(
    db,
    sql`select conversation_id, user_id, role from conversation_participants
        order by conversation_id, user_id`,
  );
  expect(roles).toEqual([
    { conversation_id: 'gone', user_id: 'u1', role: 'MEMBER' },
    { conversation_id: 'ownerless', user_id: 'u2', role: 'MEMBER' },
    { conversation_id: 'ownerless', user_id: 'u3', role: 'OWNER' },
    { conversation_id: 'ownerless', user_id: 'u4', role: 'ADMIN' },
    { conversation_id: 'two-owners', user_id: 'u1', role: 'OWNER' },
    { conversation_id: 'two-owners', user_id: 'u2', role: 'ADMIN' },
    { conversation_id: 'two-owners', user_id: 'u3', role: 'MEMBER' },
  ]);
  const conversations = await selectRows<{ id: string; is_deleted: boolean }>(
    db,
    sql`select id, is_deleted from conversations order by id`,
  );
  expect(conversations).toEqual([
    { id: 'empty', is_deleted: true },
    { id: 'gone', is_deleted: true },
    { id: 'ownerless', is_deleted: false },
    { id: 'two-owners', is_deleted: false },
  ]);
  await expect(
    db.execute(sql`update conversation_participants set role = 'OWNER' where id = 'p3'`),
  ).rejects.toThrow();
});
