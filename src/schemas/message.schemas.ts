// Requests and responses of /api/chat (SPEC §5 Messages).
import { z } from 'zod';
import { Id, QueryInt, Timestamp, UserSummary } from './common.schemas.js';

export const MAX_CONTENT_CHARS = 32_000;
export const MAX_METADATA_BYTES = 8 * 1024;

const withinLength = (s: string) => [...s].length <= MAX_CONTENT_CHARS;
const TOO_LONG = `must be at most ${MAX_CONTENT_CHARS} characters`;

/** 1–32,000 characters (code points, so an emoji or a CJK character counts once), not blank. */
export const MessageContent = z
  .string()
  .refine((s) => s.trim().length > 0, 'must not be empty')
  .refine(withinLength, TOO_LONG)
  .meta({ description: '1–32,000 characters', example: 'Hello! Can you summarise this thread?' });

const Metadata = z
  .record(z.string().max(100), z.unknown())
  .refine(
    (value) => Buffer.byteLength(JSON.stringify(value)) <= MAX_METADATA_BYTES,
    `must be at most ${MAX_METADATA_BYTES} bytes as JSON`,
  )
  .meta({ description: 'Free-form client data, at most 8 KiB as JSON' });

/** Types a client may choose; IMAGE, FILE, AUDIO and VIDEO follow the attachments instead. */
export const ClientMessageType = z.enum(['TEXT', 'CODE', 'MARKDOWN']);

export const ClientMessageId = z
  .string()
  .regex(/^[\w.:-]{1,128}$/, 'must be 1–128 letters, digits, or _ . : -')
  .meta({ description: 'The client’s own id: a repeated one returns the first message' });

/**
 * A message's fields; `content` may be left out (or blank) only when files are attached, so a
 * picture can be sent on its own. Extend this, then apply `contentOrFiles` (zod cannot extend a
 * refined object).
 */
export const SendMessageFields = z.strictObject({
  content: z.string().refine(withinLength, TOO_LONG).default('').meta({
    description: '1–32,000 characters; may be empty when `attachments` are sent',
    example: 'Hello! Can you summarise this thread?',
  }),
  type: ClientMessageType.optional(),
  attachments: z
    .array(Id)
    .max(10)
    .optional()
    .meta({ description: 'Ids of your own uploads (POST /api/attachments) not yet sent' }),
  parentId: Id.optional(),
  metadata: Metadata.optional(),
  clientMessageId: ClientMessageId.optional(),
  ai: z.boolean().optional().meta({ description: 'false: no AI answer to this message' }),
});

export function contentOrFiles(
  body: { content: string; attachments?: string[] | undefined },
  ctx: z.RefinementCtx,
): void {
  if (!body.content.trim() && !body.attachments?.length)
    ctx.addIssue({ code: 'custom', path: ['content'], message: 'must not be empty' });
}

export const SendMessageBody = SendMessageFields.superRefine(contentOrFiles);
export type SendMessageBody = z.infer<typeof SendMessageBody>;

export const EditMessageBody = z.strictObject({ content: MessageContent });
export type EditMessageBody = z.infer<typeof EditMessageBody>;

// One RGI emoji: a single pictograph, a flag, a keycap, a skin-toned or ZWJ sequence.
// (Built with RegExp: TypeScript only accepts the `v` flag in literals from ES2024.)
const SINGLE_EMOJI = new RegExp('^\\p{RGI_Emoji}$', 'v');
export const Emoji = z
  .string()
  .max(64)
  .refine((value) => SINGLE_EMOJI.test(value), 'must be a single emoji')
  .meta({ example: '👍' });

export const ReactionBody = z.strictObject({ emoji: Emoji });
export type ReactionBody = z.infer<typeof ReactionBody>;

export const MessageParams = z.strictObject({ id: Id });
export type MessageParams = z.infer<typeof MessageParams>;

export const ReactionParams = z.strictObject({ id: Id, emoji: Emoji });
export type ReactionParams = z.infer<typeof ReactionParams>;

export const MarkReadBody = z.strictObject({ messageId: Id.optional() });
export type MarkReadBody = z.infer<typeof MarkReadBody>;

export const ListMessagesQuery = z
  .object({
    limit: QueryInt(1, 100, 50),
    before: Id.optional().meta({ description: 'A message id: the page of messages before it' }),
    after: Id.optional().meta({ description: 'A message id: the page of messages after it' }),
    branch: z.enum(['all', 'active']).default('all').meta({
      description:
        'active: without the versions a regenerate or edit-and-resend replaced (and their answers)',
    }),
  })
  .refine((q) => !(q.before && q.after), 'use before or after, not both');
export type ListMessagesQuery = z.infer<typeof ListMessagesQuery>;

export const SearchQuery = z.object({
  q: z
    .string()
    .max(200)
    .refine((s) => s.trim().length > 0, 'must not be empty')
    .meta({
      description: 'Words or text to find (English stems; Chinese/Japanese/Korean substrings)',
    }),
  limit: QueryInt(1, 50, 20),
  page: QueryInt(1, 1000, 1),
});
export type SearchQuery = z.infer<typeof SearchQuery>;

export const MessageRole = z.enum(['USER', 'ASSISTANT', 'SYSTEM']);
export const MessageType = z.enum(['TEXT', 'IMAGE', 'FILE', 'AUDIO', 'VIDEO', 'CODE', 'MARKDOWN']);
export const MessageStatus = z.enum(['SENDING', 'SENT', 'DELIVERED', 'READ', 'FAILED']);

export const ReactionSummary = z
  .object({ emoji: z.string(), count: z.int(), userIds: z.array(Id) })
  .meta({ id: 'ReactionSummary' });

export const AttachmentView = z
  .object({
    id: Id,
    filename: z.string(),
    originalName: z.string(),
    mimeType: z.string(),
    size: z.int(),
    url: z.string(),
    metadata: z.record(z.string(), z.unknown()).nullable(),
  })
  .meta({ id: 'Attachment' });

export const VersionSummary = z
  .object({
    number: z.int().meta({ description: 'This version’s number, 1 for the first' }),
    count: z.int().meta({ description: 'How many versions the message has' }),
    previousId: Id.nullable().meta({ description: 'The version before this one' }),
    nextId: Id.nullable().meta({ description: 'The version after this one' }),
  })
  .meta({ id: 'VersionSummary' });

export const Message = z
  .object({
    id: Id,
    conversationId: Id,
    userId: Id.nullable().meta({
      description: 'The author; null for the AI, and once the author deleted their account',
    }),
    author: UserSummary.nullable().meta({
      description: 'null for the AI, and for a deleted user',
    }),
    content: z.string().nullable().meta({ description: 'null once the message is deleted' }),
    role: MessageRole,
    type: MessageType,
    metadata: z.record(z.string(), z.unknown()).nullable(),
    parentId: Id.nullable().meta({
      description:
        'The message this one replies to: an answer’s question, or a reply a client chose',
    }),
    alternativeOf: Id.nullable().meta({
      description:
        'Set on a regenerated answer or an edited-and-resent message: the first version of the message it replaces',
    }),
    superseded: z.boolean().meta({
      description:
        'Off the active branch: another version of it is the chosen one, or it replies to a message that is off the branch',
    }),
    versions: VersionSummary.nullable().meta({
      description:
        'For a message that has other versions (regenerate, edit-and-resend): "version number of count", and the neighbours to switch to with POST /messages/:id/activate. null otherwise',
    }),
    threadId: z.string().nullable(),
    status: MessageStatus,
    isEdited: z.boolean(),
    isDeleted: z.boolean(),
    clientMessageId: z.string().nullable(),
    model: z.string().nullable(),
    usage: z
      .object({ promptTokens: z.int(), completionTokens: z.int(), totalTokens: z.int() })
      .nullable(),
    finishReason: z.string().nullable(),
    reactions: z.array(ReactionSummary),
    attachments: z.array(AttachmentView),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    editedAt: Timestamp.nullable(),
  })
  .meta({ id: 'Message' });

/** A message as the API (and every realtime event) shows it. */
export type MessageView = z.output<typeof Message>;

export const GenerationRef = z
  .object({ id: Id, messageId: Id.meta({ description: 'The assistant message being written' }) })
  .meta({ id: 'GenerationRef' });

export const SendMessageResult = z.object({
  message: Message,
  generation: GenerationRef.optional().meta({ description: 'Present when the AI answers' }),
});

export const MessagePage = z.object({ messages: z.array(Message), hasMore: z.boolean() });

export const BranchSwitch = z
  .object({
    conversationId: Id,
    messageId: Id.meta({ description: 'The version now chosen' }),
    active: z.array(Id).meta({ description: 'Messages that joined the active branch' }),
    superseded: z.array(Id).meta({ description: 'Messages that left the active branch' }),
  })
  .meta({ id: 'BranchSwitch' });

export const Reaction = z.object({
  messageId: Id,
  userId: Id,
  emoji: z.string(),
  createdAt: Timestamp,
});

export const ReactionRemoved = z.object({
  messageId: Id,
  emoji: z.string(),
  removed: z.boolean(),
});

export const ReadReceipt = z.object({
  conversationId: Id,
  userId: Id,
  lastReadAt: Timestamp,
  messageId: Id.nullable(),
});

export const SearchHit = z
  .object({
    message: Message,
    conversationTitle: z.string(),
    snippet: z.string().meta({
      description: 'HTML-escaped text around the matches, each match wrapped in <mark>…</mark>',
    }),
    rank: z.number(),
  })
  .meta({ id: 'SearchHit' });

export const SearchResults = z.object({
  items: z.array(SearchHit),
  page: z.int(),
  limit: z.int(),
  hasMore: z.boolean(),
});
