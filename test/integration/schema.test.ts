// Reads the live, migrated schema and checks it against the seed's Prisma models (SPEC §4):
// every table, column, default, enum value, unique constraint, index and foreign-key action.
import { sql, type SQL } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/client.js';
import { openTestDatabase, type TestDatabase } from '../support/database.js';
import { selectRows } from '../support/sql.js';

let testDb: TestDatabase;
let database: Database;
beforeAll(async () => {
  testDb = await openTestDatabase();
  database = testDb.database;
});
afterAll(async () => {
  await testDb.dispose();
});

const rows = <T>(query: SQL) => selectRows<T>(database.db, query);

type Column = [type: string, nullable: boolean, defaultPattern?: RegExp];
const ts = 'timestamp with time zone';
const now = /now\(\)/;
const NO_DEFAULT = /^$/;

/** The seed's fields (snake_case), with SPEC §4's changes and additions marked. */
const SEED_COLUMNS: Record<string, Record<string, Column>> = {
  users: {
    id: ['text', false],
    email: ['text', false],
    username: ['text', true],
    avatar: ['text', true],
    role: ['UserRole', false, /'USER'/],
    password_hash: ['text', true],
    email_verified: ['boolean', false, /false/],
    created_at: [ts, false, now],
    updated_at: [ts, false, now],
    last_active_at: [ts, false, now],
  },
  conversations: {
    id: ['text', false],
    title: ['text', false, /'新对话'/],
    description: ['text', true],
    is_archived: ['boolean', false, /false/],
    is_deleted: ['boolean', false, /false/],
    settings: ['jsonb', true],
    created_at: [ts, false, now],
    updated_at: [ts, false, now],
    last_message_at: [ts, true],
  },
  conversation_participants: {
    id: ['text', false],
    conversation_id: ['text', false],
    user_id: ['text', false],
    role: ['ParticipantRole', false, /'MEMBER'/],
    joined_at: [ts, false, now],
    last_read_at: [ts, false, now],
  },
  messages: {
    id: ['text', false],
    conversation_id: ['text', false],
    user_id: ['text', true],
    content: ['text', false],
    role: ['MessageRole', false, NO_DEFAULT],
    type: ['MessageType', false, /'TEXT'/],
    metadata: ['jsonb', true],
    parent_id: ['text', true],
    thread_id: ['text', true],
    status: ['MessageStatus', false, /'SENT'/],
    is_edited: ['boolean', false, /false/],
    is_deleted: ['boolean', false, /false/],
    created_at: [ts, false, now],
    updated_at: [ts, false, now],
    edited_at: [ts, true],
    // SPEC §4 additions for generation and search.
    model: ['text', true],
    usage: ['jsonb', true],
    finish_reason: ['text', true],
    search_vector: ['tsvector', true],
  },
  attachments: {
    id: ['text', false],
    message_id: ['text', true], // SPEC §4: nullable until the message is sent
    uploader_id: ['text', true], // SPEC §4: added
    filename: ['text', false],
    original_name: ['text', false],
    mime_type: ['text', false],
    size: ['integer', false],
    url: ['text', false],
    metadata: ['jsonb', true],
    created_at: [ts, false, now],
  },
  message_reactions: {
    id: ['text', false],
    message_id: ['text', false],
    user_id: ['text', false],
    emoji: ['text', false],
    created_at: [ts, false, now],
  },
  user_sessions: {
    id: ['text', false],
    user_id: ['text', false],
    token: ['text', false],
    user_agent: ['text', true],
    ip_address: ['text', true],
    created_at: [ts, false, now],
    expires_at: [ts, false, NO_DEFAULT],
    last_used_at: [ts, false, now],
    revoked_at: [ts, true], // SPEC §4: added
  },
};

const SEED_ENUMS: Record<string, string[]> = {
  UserRole: ['USER', 'ADMIN', 'MODERATOR'],
  ParticipantRole: ['OWNER', 'ADMIN', 'MEMBER'],
  MessageRole: ['USER', 'ASSISTANT', 'SYSTEM'],
  MessageType: ['TEXT', 'IMAGE', 'FILE', 'AUDIO', 'VIDEO', 'CODE', 'MARKDOWN'],
  MessageStatus: ['SENDING', 'SENT', 'DELIVERED', 'READ', 'FAILED'],
};

/** table(columns) of every @unique / @@unique in the seed. */
const SEED_UNIQUES = [
  'users(email)',
  'users(username)',
  'conversation_participants(conversation_id,user_id)',
  'message_reactions(message_id,user_id,emoji)',
  'user_sessions(token)',
];

/**
 * table(columns) of every @@index in the seed, plus the search index of SPEC §4. An index whose
 * leading columns are these serves every query the seed's did (messages' pagination index has
 * the id appended as a keyset tie-breaker).
 */
const SEED_INDEXES = [
  'messages(conversation_id,created_at)',
  'messages(user_id)',
  'messages(search_vector) gin',
];

/** table.column → referenced table and ON DELETE action of every seed relation. */
const SEED_FOREIGN_KEYS: Record<string, [string, 'CASCADE' | 'SET NULL']> = {
  'conversation_participants.conversation_id': ['conversations', 'CASCADE'],
  'conversation_participants.user_id': ['users', 'CASCADE'],
  'messages.conversation_id': ['conversations', 'CASCADE'],
  'messages.user_id': ['users', 'SET NULL'],
  'messages.parent_id': ['messages', 'SET NULL'], // Prisma's default for an optional relation
  'attachments.message_id': ['messages', 'CASCADE'],
  'message_reactions.message_id': ['messages', 'CASCADE'],
  'user_sessions.user_id': ['users', 'CASCADE'],
};

describe('live schema matches the seed (SPEC §4)', () => {
  it('has every seed table and column with its type, nullability and default', async () => {
    const columns = await rows<{
      table_name: string;
      column_name: string;
      data_type: string;
      udt_name: string;
      is_nullable: 'YES' | 'NO';
      column_default: string | null;
    }>(sql`select table_name, column_name, data_type, udt_name, is_nullable, column_default
           from information_schema.columns where table_schema = 'public'`);
    const byName = new Map(columns.map((c) => [`${c.table_name}.${c.column_name}`, c]));
    for (const [table, fields] of Object.entries(SEED_COLUMNS)) {
      for (const [column, [type, nullable, defaultPattern]] of Object.entries(fields)) {
        const live = byName.get(`${table}.${column}`);
        expect(live, `${table}.${column} exists`).toBeDefined();
        const liveType = live!.data_type === 'USER-DEFINED' ? live!.udt_name : live!.data_type;
        expect(liveType, `${table}.${column} type`).toBe(type);
        expect(live!.is_nullable === 'YES', `${table}.${column} nullable`).toBe(nullable);
        if (defaultPattern) {
          expect(live!.column_default ?? '', `${table}.${column} default`).toMatch(defaultPattern);
        }
      }
    }
  });

  it('keeps timestamps at millisecond precision, like JavaScript dates', async () => {
    const precisions = await rows<{ datetime_precision: number }>(
      sql`select datetime_precision from information_schema.columns
          where table_schema = 'public' and data_type = 'timestamp with time zone'`,
    );
    expect(precisions.length).toBeGreaterThan(15);
    expect(new Set(precisions.map((p) => Number(p.datetime_precision)))).toEqual(new Set([3]));
  });

  it('has every seed enum with its values in order', async () => {
    const values = await rows<{ type: string; label: string }>(
      sql`select t.typname as type, e.enumlabel as label from pg_enum e
          join pg_type t on t.oid = e.enumtypid order by t.typname, e.enumsortorder`,
    );
    for (const [type, labels] of Object.entries(SEED_ENUMS)) {
      expect(
        values.filter((v) => v.type === type).map((v) => v.label),
        type,
      ).toEqual(labels);
    }
  });

  it('has every unique constraint and index of the seed', async () => {
    const indexes = await rows<{
      tbl: string;
      cols: string | null;
      is_unique: boolean;
      method: string;
    }>(
      sql`select t.relname as tbl, ix.indisunique as is_unique, am.amname as method,
                 (select string_agg(a.attname, ',' order by k.ord)
                    from unnest(ix.indkey) with ordinality k(attnum, ord)
                    join pg_attribute a on a.attrelid = t.oid and a.attnum = k.attnum) as cols
          from pg_index ix
          join pg_class t on t.oid = ix.indrelid
          join pg_class i on i.oid = ix.indexrelid
          join pg_am am on am.oid = i.relam
          join pg_namespace n on n.oid = t.relnamespace
          where n.nspname = 'public'`,
    );
    const described = indexes.map((i) => `${i.tbl}(${i.cols})`);
    const unique = indexes.filter((i) => i.is_unique).map((i) => `${i.tbl}(${i.cols})`);
    for (const expected of SEED_UNIQUES) expect(unique, expected).toContain(expected);
    for (const expected of SEED_INDEXES) {
      const [shape, method = 'btree'] = expected.split(' ');
      const match = indexes.find(
        (i) =>
          `${i.tbl}(${i.cols})` === shape ||
          `${i.tbl}(${i.cols})`.startsWith(shape!.replace(/\)$/, ',')),
      );
      expect(match, `${expected} in ${described.join(' ')}`).toBeDefined();
      expect(match!.method).toBe(method);
    }
    for (const table of Object.keys(SEED_COLUMNS)) {
      expect(
        indexes.some((i) => i.tbl === table && i.cols === 'id' && i.is_unique),
        `${table} pk`,
      ).toBe(true);
    }
  });

  it('has every seed relation with its ON DELETE action', async () => {
    const keys = await rows<{ tbl: string; col: string; ref: string; on_delete: string }>(
      sql`select c.conrelid::regclass::text as tbl, a.attname as col,
                 c.confrelid::regclass::text as ref, c.confdeltype as on_delete
          from pg_constraint c
          join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
          where c.contype = 'f'`,
    );
    const actions: Record<string, string> = {
      c: 'CASCADE',
      n: 'SET NULL',
      a: 'NO ACTION',
      r: 'RESTRICT',
    };
    for (const [column, [ref, onDelete]] of Object.entries(SEED_FOREIGN_KEYS)) {
      const [tbl, col] = column.split('.');
      const key = keys.find((k) => k.tbl === tbl && k.col === col);
      expect(key, `${column} foreign key`).toBeDefined();
      expect(key!.ref, `${column} references`).toBe(ref);
      expect(actions[key!.on_delete], `${column} on delete`).toBe(onDelete);
    }
  });

  it('cascades and nulls as declared when rows are deleted', async () => {
    const db = database.db;
    await db.execute(
      sql`insert into users (id, email) values ('u1', 'u1@x.test'), ('u2', 'u2@x.test')`,
    );
    await db.execute(sql`insert into conversations (id) values ('c1')`);
    await db.execute(sql`insert into conversation_participants (id, conversation_id, user_id)
                         values ('p1', 'c1', 'u1'), ('p2', 'c1', 'u2')`);
    await db.execute(sql`insert into messages (id, conversation_id, user_id, content, role)
                         values ('m1', 'c1', 'u1', 'hello', 'USER')`);
    await db.execute(sql`insert into messages (id, conversation_id, user_id, content, role, parent_id)
                         values ('m2', 'c1', 'u2', 'hi', 'USER', 'm1')`);
    await db.execute(
      sql`insert into message_reactions (id, message_id, user_id, emoji) values ('r1', 'm2', 'u1', '👍')`,
    );
    await db.execute(sql`insert into attachments (id, message_id, uploader_id, filename, original_name, mime_type, size, url)
                         values ('a1', 'm1', 'u1', 'f', 'f.txt', 'text/plain', 1, '/f')`);
    await db.execute(
      sql`insert into user_sessions (id, user_id, token, expires_at) values ('s1', 'u1', 'h', now())`,
    );

    // Deleting a user: their sessions, memberships and reactions go; their messages stay, unowned.
    await db.execute(sql`delete from users where id = 'u1'`);
    const afterUser = await rows<{
      sessions: number;
      members: number;
      reactions: number;
      owner: string | null;
      uploader: string | null;
    }>(
      sql`select (select count(*)::int from user_sessions where user_id = 'u1') as sessions,
                 (select count(*)::int from conversation_participants where user_id = 'u1') as members,
                 (select count(*)::int from message_reactions where user_id = 'u1') as reactions,
                 (select user_id from messages where id = 'm1') as owner,
                 (select uploader_id from attachments where id = 'a1') as uploader`,
    );
    expect(afterUser[0]).toEqual({
      sessions: 0,
      members: 0,
      reactions: 0,
      owner: null,
      uploader: null,
    });

    // Deleting a parent message orphans its replies; deleting a message takes its attachments.
    await db.execute(sql`delete from messages where id = 'm1'`);
    const afterParent = await rows<{ parent: string | null; files: number }>(
      sql`select (select parent_id from messages where id = 'm2') as parent,
                 (select count(*)::int from attachments where id = 'a1') as files`,
    );
    expect(afterParent[0]).toEqual({ parent: null, files: 0 });

    // Deleting a conversation takes its messages and memberships.
    await db.execute(sql`delete from conversations where id = 'c1'`);
    const afterConversation = await rows<{ messages: number; members: number }>(
      sql`select (select count(*)::int from messages where conversation_id = 'c1') as messages,
                 (select count(*)::int from conversation_participants where conversation_id = 'c1') as members`,
    );
    expect(afterConversation[0]).toEqual({ messages: 0, members: 0 });
  });

  it('keeps a client message id unique per user', async () => {
    const db = database.db;
    await db.execute(sql`insert into users (id, email) values ('u9', 'u9@x.test')`);
    await db.execute(sql`insert into conversations (id) values ('c9')`);
    await db.execute(sql`insert into messages (id, conversation_id, user_id, content, role, client_message_id)
                         values ('m91', 'c9', 'u9', 'a', 'USER', 'client-1'), ('m92', 'c9', 'u9', 'b', 'USER', null),
                                ('m93', 'c9', 'u9', 'c', 'USER', null)`);
    await expect(
      db.execute(sql`insert into messages (id, conversation_id, user_id, content, role, client_message_id)
                     values ('m94', 'c9', 'u9', 'd', 'USER', 'client-1')`),
    ).rejects.toThrow();
  });

  it('allows one OWNER per conversation, any number of admins and members', async () => {
    const db = database.db;
    const [index] = await rows<{ indexdef: string }>(
      sql`select indexdef from pg_indexes
          where indexname = 'conversation_participants_one_owner_key'`,
    );
    expect(index?.indexdef).toMatch(/UNIQUE INDEX .*\(conversation_id\) WHERE \(role = 'OWNER'/);
    await db.execute(
      sql`insert into users (id, email) values ('u5', 'u5@x.test'), ('u6', 'u6@x.test'), ('u7', 'u7@x.test')`,
    );
    await db.execute(sql`insert into conversations (id) values ('c5'), ('c6')`);
    await db.execute(sql`insert into conversation_participants (id, conversation_id, user_id, role)
                         values ('p51', 'c5', 'u5', 'OWNER'), ('p52', 'c5', 'u6', 'ADMIN'),
                                ('p53', 'c5', 'u7', 'ADMIN'), ('p61', 'c6', 'u6', 'OWNER')`);
    await expect(
      db.execute(sql`update conversation_participants set role = 'OWNER' where id = 'p52'`),
    ).rejects.toThrow();
  });

  it('fills the full-text column from the content', async () => {
    await database.db.execute(sql`insert into conversations (id) values ('c2')`);
    await database.db.execute(sql`insert into messages (id, conversation_id, content, role)
                                  values ('m3', 'c2', 'The runners were running quickly', 'USER')`);
    const found = await rows<{ id: string }>(
      sql`select id from messages where search_vector @@ plainto_tsquery('english', 'run')`,
    );
    expect(found.map((r) => r.id)).toEqual(['m3']);
  });
});
