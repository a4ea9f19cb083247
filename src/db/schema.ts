// Every table of Parley: the seed's seven Prisma models carried to Drizzle field for field,
// with the changes of SPEC §4 (hashed refresh tokens, nullable attachment message, generation
// fields, full-text column) and the tables later features need.
import { createId } from '../utils/ids.js';
import { sql, type InferInsertModel, type InferSelectModel } from 'drizzle-orm';
import {
  boolean,
  customType,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
  type AnyPgColumn,
} from 'drizzle-orm/pg-core';

// Enum type names are the seed's Prisma enum names, so SQL written against the seed still reads right.
export const userRole = pgEnum('UserRole', ['USER', 'ADMIN', 'MODERATOR']);
export const participantRole = pgEnum('ParticipantRole', ['OWNER', 'ADMIN', 'MEMBER']);
export const messageRole = pgEnum('MessageRole', ['USER', 'ASSISTANT', 'SYSTEM']);
export const messageType = pgEnum('MessageType', [
  'TEXT',
  'IMAGE',
  'FILE',
  'AUDIO',
  'VIDEO',
  'CODE',
  'MARKDOWN',
]);
export const messageStatus = pgEnum('MessageStatus', [
  'SENDING',
  'SENT',
  'DELIVERED',
  'READ',
  'FAILED',
]);

const id = () =>
  text('id')
    .primaryKey()
    .$defaultFn(() => createId());

// Millisecond precision matches JavaScript's Date, so a timestamp read back and used as a
// keyset cursor compares equal to the stored value.
const at = (name: string) => timestamp(name, { withTimezone: true, precision: 3, mode: 'date' });
const createdAt = () => at('created_at').notNull().defaultNow();
const updatedAt = () =>
  at('updated_at')
    .notNull()
    .defaultNow()
    .$onUpdate(() => new Date());

// Prisma's referential actions: ON UPDATE CASCADE everywhere, ON DELETE as the seed says.
const cascade = { onDelete: 'cascade', onUpdate: 'cascade' } as const;
const setNull = { onDelete: 'set null', onUpdate: 'cascade' } as const;

const tsvector = customType<{ data: string }>({
  dataType: () => 'tsvector',
});

export const generationStatus = pgEnum('GenerationStatus', [
  'RUNNING',
  'COMPLETED',
  'FAILED',
  'STOPPED',
]);

export const users = pgTable(
  'users',
  {
    id: id(),
    email: text('email').notNull(),
    username: text('username'),
    avatar: text('avatar'),
    role: userRole('role').notNull().default('USER'),
    passwordHash: text('password_hash'),
    emailVerified: boolean('email_verified').notNull().default(false),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    lastActiveAt: at('last_active_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('users_email_key').on(t.email),
    uniqueIndex('users_username_key').on(t.username),
    // "Alice" and "alice" would otherwise be two accounts that look the same to people.
    uniqueIndex('users_username_lower_key').on(sql`lower(${t.username})`),
  ],
);

export interface ConversationSettings {
  aiEnabled?: boolean;
  model?: string;
  systemPrompt?: string;
  temperature?: number;
  maxOutputTokens?: number;
}

export const conversations = pgTable('conversations', {
  id: id(),
  title: text('title').notNull().default('新对话'),
  description: text('description'),
  isArchived: boolean('is_archived').notNull().default(false),
  isDeleted: boolean('is_deleted').notNull().default(false),
  settings: jsonb('settings').$type<ConversationSettings>(),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
  lastMessageAt: at('last_message_at'),
});

export const conversationParticipants = pgTable(
  'conversation_participants',
  {
    id: id(),
    conversationId: text('conversation_id')
      .notNull()
      .references(() => conversations.id, cascade),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, cascade),
    role: participantRole('role').notNull().default('MEMBER'),
    joinedAt: at('joined_at').notNull().defaultNow(),
    lastReadAt: at('last_read_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('conversation_participants_conversation_id_user_id_key').on(
      t.conversationId,
      t.userId,
    ),
    // "My conversations" is the hottest lookup; the unique index above leads with the conversation.
    index('conversation_participants_user_id_idx').on(t.userId),
    // At most one OWNER per conversation, whatever the code does: the membership transaction
    // (ParticipantRepository.changeMembership) keeps exactly one, this index refuses a second.
    uniqueIndex('conversation_participants_one_owner_key')
      .on(t.conversationId)
      .where(sql`role = 'OWNER'`),
  ],
);

export interface MessageUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export const messages = pgTable(
  'messages',
  {
    id: id(),
    conversationId: text('conversation_id')
      .notNull()
      .references(() => conversations.id, cascade),
    userId: text('user_id').references(() => users.id, setNull),
    content: text('content').notNull(),
    role: messageRole('role').notNull(),
    type: messageType('type').notNull().default('TEXT'),
    metadata: jsonb('metadata').$type<Record<string, unknown>>(),
    // The message this one replies to: an AI answer's question, or a reply a client chose. It
    // never hides anything by itself (docs/api.md "Branches").
    parentId: text('parent_id').references((): AnyPgColumn => messages.id, setNull),
    threadId: text('thread_id'),
    status: messageStatus('status').notNull().default('SENT'),
    isEdited: boolean('is_edited').notNull().default(false),
    isDeleted: boolean('is_deleted').notNull().default(false),
    // Generation results (SPEC §7): which model answered, tokens billed, why it stopped.
    model: text('model'),
    usage: jsonb('usage').$type<MessageUsage>(),
    finishReason: text('finish_reason'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    editedAt: at('edited_at'),
    // A client's own id for a message it sends, so a retried send creates one message.
    clientMessageId: text('client_message_id'),
    // Regenerate and edit-and-resend make alternatives: the first version of the message this one
    // replaces. Only alternatives make branches (docs/api.md "Branches").
    alternativeOf: text('alternative_of').references((): AnyPgColumn => messages.id, setNull),
    // Off the active branch: a newer alternative replaced it, or it replies to one that was.
    superseded: boolean('superseded').notNull().default(false),
    // Which version of its group the user chose (POST /messages/:id/activate): null on a message
    // that has no other version, true on the chosen one, false on the others. Kept when an
    // earlier message leaves the branch, so the choice comes back with it.
    chosen: boolean('chosen'),
    // English words as stems, plus overlapping bigrams of CJK runs (parley_cjk_bigrams, created
    // in migration 0001), so a two-character Chinese query finds text that contains it.
    searchVector: tsvector('search_vector').generatedAlwaysAs(
      sql`to_tsvector('english'::regconfig, content) || to_tsvector('simple'::regconfig, parley_cjk_bigrams(content))`,
    ),
  },
  (t) => [
    // The seed's (conversation_id, created_at) index with the id appended: keyset pages order
    // by (created_at, id), and rows inserted in one transaction share a created_at.
    index('messages_conversation_id_created_at_idx').on(t.conversationId, t.createdAt, t.id),
    index('messages_user_id_idx').on(t.userId),
    index('messages_parent_id_idx').on(t.parentId),
    index('messages_alternative_of_idx').on(t.alternativeOf),
    // At most one chosen version per group, whatever writes it (the group's first row is locked
    // while its versions change, so one it is). Only chosen versions are indexed: it stays tiny.
    uniqueIndex('messages_one_chosen_version_key')
      .on(sql`coalesce(${t.alternativeOf}, ${t.id})`)
      .where(sql`chosen`),
    index('messages_search_vector_idx').using('gin', t.searchVector),
    uniqueIndex('messages_user_id_client_message_id_key')
      .on(t.userId, t.clientMessageId)
      .where(sql`client_message_id is not null`),
  ],
);

export const attachments = pgTable(
  'attachments',
  {
    id: id(),
    // Null until the message that uses the upload is sent (SPEC §4).
    messageId: text('message_id').references(() => messages.id, cascade),
    // Kept nullable with SET NULL, like messages.user_id: a deleted account does not take
    // files out of conversations other people are still in.
    uploaderId: text('uploader_id').references(() => users.id, setNull),
    filename: text('filename').notNull(),
    originalName: text('original_name').notNull(),
    mimeType: text('mime_type').notNull(),
    size: integer('size').notNull(),
    url: text('url').notNull(),
    metadata: jsonb('metadata').$type<Record<string, unknown>>(),
    createdAt: createdAt(),
  },
  (t) => [
    index('attachments_message_id_idx').on(t.messageId),
    index('attachments_uploader_id_idx').on(t.uploaderId),
    // A stored file's name is generated, so unique; the cleanup job looks files up by it.
    uniqueIndex('attachments_filename_key').on(t.filename),
    // The cleanup job's question: uploads no message used, oldest first.
    index('attachments_unattached_idx')
      .on(t.createdAt)
      .where(sql`${t.messageId} is null`),
  ],
);

export const messageReactions = pgTable(
  'message_reactions',
  {
    id: id(),
    messageId: text('message_id')
      .notNull()
      .references(() => messages.id, cascade),
    // The seed has no relation here; the foreign key keeps reactions from outliving their user.
    userId: text('user_id')
      .notNull()
      .references(() => users.id, cascade),
    emoji: text('emoji').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('message_reactions_message_id_user_id_emoji_key').on(
      t.messageId,
      t.userId,
      t.emoji,
    ),
  ],
);

export const userSessions = pgTable(
  'user_sessions',
  {
    id: id(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, cascade),
    // SHA-256 of the session's current refresh token; the token itself is never stored.
    token: text('token').notNull(),
    userAgent: text('user_agent'),
    ipAddress: text('ip_address'),
    createdAt: createdAt(),
    expiresAt: at('expires_at').notNull(),
    lastUsedAt: at('last_used_at').notNull().defaultNow(),
    revokedAt: at('revoked_at'),
    // Why it was revoked: 'logout', 'revoked', 'reuse' (a rotated refresh token came back).
    revokedReason: text('revoked_reason'),
  },
  (t) => [
    uniqueIndex('user_sessions_token_key').on(t.token),
    index('user_sessions_user_id_idx').on(t.userId),
  ],
);

// One AI answer being written: which assistant message it fills, for which user message, by
// which provider and model, and how it ended. A row left RUNNING by a crashed process is marked
// FAILED at the next start.
export const generations = pgTable(
  'generations',
  {
    id: id(),
    conversationId: text('conversation_id')
      .notNull()
      .references(() => conversations.id, cascade),
    messageId: text('message_id')
      .notNull()
      .references(() => messages.id, cascade),
    userMessageId: text('user_message_id').references(() => messages.id, setNull),
    requestedBy: text('requested_by').references(() => users.id, setNull),
    provider: text('provider').notNull(),
    model: text('model').notNull(),
    status: generationStatus('status').notNull().default('RUNNING'),
    finishReason: text('finish_reason'),
    error: text('error'),
    usage: jsonb('usage').$type<MessageUsage>(),
    createdAt: createdAt(),
    firstTokenAt: at('first_token_at'),
    endedAt: at('ended_at'),
    // Scale-out: the process running the answer holds a lease it renews; a lease left to expire
    // (the process was killed) lets any other process fail the answer. Before a worker takes the
    // job, the lease is the queue's (no owner): an answer never picked up is failed too.
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: at('lease_expires_at'),
  },
  (t) => [
    index('generations_running_lease_idx')
      .on(t.leaseExpiresAt)
      .where(sql`status = 'RUNNING'`),
    index('generations_message_id_idx').on(t.messageId),
    index('generations_conversation_id_idx').on(t.conversationId),
    index('generations_status_idx').on(t.status),
  ],
);

// Every refresh token a session has rotated away from. Presenting one again is reuse: the
// token leaked, so the whole session (and every token descended from it) is revoked.
export const rotatedRefreshTokens = pgTable(
  'rotated_refresh_tokens',
  {
    tokenHash: text('token_hash').primaryKey(),
    sessionId: text('session_id')
      .notNull()
      .references(() => userSessions.id, cascade),
    rotatedAt: at('rotated_at').notNull().defaultNow(),
  },
  (t) => [index('rotated_refresh_tokens_session_id_idx').on(t.sessionId)],
);

export type User = InferSelectModel<typeof users>;
export type NewUser = InferInsertModel<typeof users>;
export type Conversation = InferSelectModel<typeof conversations>;
export type ConversationParticipant = InferSelectModel<typeof conversationParticipants>;
/** A message as the application reads it: the search vector stays inside the database. */
export type Message = Omit<InferSelectModel<typeof messages>, 'searchVector'>;
export type Attachment = InferSelectModel<typeof attachments>;
export type NewAttachment = InferInsertModel<typeof attachments>;
export type MessageReaction = InferSelectModel<typeof messageReactions>;
export type UserSession = InferSelectModel<typeof userSessions>;
export type NewUserSession = InferInsertModel<typeof userSessions>;
export type Generation = InferSelectModel<typeof generations>;
export type GenerationStatus = (typeof generationStatus.enumValues)[number];
export type UserRole = (typeof userRole.enumValues)[number];
export type ParticipantRole = (typeof participantRole.enumValues)[number];
