// Requests and responses of /api/conversations (SPEC §5 Conversations).
import { z } from 'zod';
import { decodeCursor } from '../utils/cursor.js';
import { Id, QueryInt, Timestamp } from './common.schemas.js';

const Title = z.string().trim().min(1, 'must not be empty').max(200);
const Description = z.string().max(2000);

/** Per-conversation AI settings (SPEC §5); every field optional on input. */
const SettingsFields = {
  aiEnabled: z.boolean(),
  model: z.string().trim().min(1).max(200).meta({
    description:
      'One of the models the server offers (AI_MODELS; unset: only its default model); another is a 400',
  }),
  systemPrompt: z.string().max(8000),
  temperature: z.number().min(0).max(2),
  maxOutputTokens: z.int().min(1).max(32_768).meta({
    description: 'At most the server’s ceiling AI_MAX_OUTPUT_TOKENS (default 1024); more is a 400',
  }),
};

export const ConversationSettingsInput = z
  .strictObject({
    aiEnabled: SettingsFields.aiEnabled.optional(),
    model: SettingsFields.model.optional(),
    systemPrompt: SettingsFields.systemPrompt.optional(),
    temperature: SettingsFields.temperature.optional(),
    maxOutputTokens: SettingsFields.maxOutputTokens.optional(),
  })
  .meta({ id: 'ConversationSettingsInput' });
export type ConversationSettingsInput = z.infer<typeof ConversationSettingsInput>;

/** A settings patch: a value sets the key, null removes it. */
export const ConversationSettingsPatch = z.strictObject({
  aiEnabled: SettingsFields.aiEnabled.nullable().optional(),
  model: SettingsFields.model.nullable().optional(),
  systemPrompt: SettingsFields.systemPrompt.nullable().optional(),
  temperature: SettingsFields.temperature.nullable().optional(),
  maxOutputTokens: SettingsFields.maxOutputTokens.nullable().optional(),
});
export type ConversationSettingsPatch = z.infer<typeof ConversationSettingsPatch>;

export const ConversationSettings = z
  .object({
    aiEnabled: z.boolean(),
    model: z.string().optional(),
    systemPrompt: z.string().optional(),
    temperature: z.number().optional(),
    maxOutputTokens: z.int().optional(),
  })
  .meta({ id: 'ConversationSettings' });

export const CreateConversationBody = z.strictObject({
  title: Title.optional(),
  description: Description.optional(),
  settings: ConversationSettingsInput.optional(),
  participantIds: z.array(Id).max(100).optional(),
});
export type CreateConversationBody = z.infer<typeof CreateConversationBody>;

export const UpdateConversationBody = z
  .strictObject({
    title: Title.optional(),
    description: Description.nullable().optional(),
    settings: ConversationSettingsPatch.optional(),
  })
  .refine((body) => Object.keys(body).length > 0, 'must change at least one field');
export type UpdateConversationBody = z.infer<typeof UpdateConversationBody>;

export const ArchiveBody = z.strictObject({ archived: z.boolean().default(true) });
export type ArchiveBody = z.infer<typeof ArchiveBody>;

export const ParticipantRoleInput = z.enum(['ADMIN', 'MEMBER']);

export const AddParticipantBody = z.strictObject({
  userId: Id,
  role: ParticipantRoleInput.default('MEMBER'),
});
export type AddParticipantBody = z.infer<typeof AddParticipantBody>;

export const ConversationParams = z.strictObject({ id: Id });
export type ConversationParams = z.infer<typeof ConversationParams>;

export const ParticipantParams = z.strictObject({ id: Id, userId: Id });
export type ParticipantParams = z.infer<typeof ParticipantParams>;

export const ListConversationsQuery = z.object({
  archived: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  limit: QueryInt(1, 100, 20),
  cursor: z
    .string()
    .max(200)
    .transform((text, ctx) => {
      // Decoded here, so a forged cursor is a 400 like any other bad field and never reaches SQL.
      const position = decodeCursor(text);
      if (position && Id.safeParse(position.id).success) return position;
      ctx.addIssue({ code: 'custom', message: 'is not a cursor this API issued' });
      return z.NEVER;
    })
    .optional()
    .meta({ description: 'The previous page’s nextCursor, as it was' }),
});
export type ListConversationsQuery = z.infer<typeof ListConversationsQuery>;

export const ParticipantRole = z.enum(['OWNER', 'ADMIN', 'MEMBER']);

export const Participant = z
  .object({
    userId: Id,
    username: z.string().nullable(),
    avatar: z.string().nullable(),
    role: ParticipantRole,
    joinedAt: Timestamp,
    lastReadAt: Timestamp,
    online: z.boolean().meta({
      description:
        'Connected now, on any instance (user:online and user:offline tell the changes after this)',
    }),
  })
  .meta({ id: 'Participant' });

export const MessagePreview = z
  .object({
    id: Id,
    userId: Id.nullable(),
    role: z.enum(['USER', 'ASSISTANT', 'SYSTEM']),
    type: z.string(),
    content: z.string().meta({ description: 'The first 200 characters' }),
    createdAt: Timestamp,
  })
  .meta({ id: 'MessagePreview' });

const ConversationFields = {
  id: Id,
  title: z.string(),
  description: z.string().nullable(),
  isArchived: z.boolean(),
  settings: ConversationSettings,
  createdAt: Timestamp,
  updatedAt: Timestamp,
  lastMessageAt: Timestamp.nullable(),
  myRole: ParticipantRole,
};

export const Conversation = z
  .object({ ...ConversationFields, participants: z.array(Participant) })
  .meta({ id: 'Conversation' });

export const ConversationListItem = z
  .object({
    ...ConversationFields,
    unreadCount: z.int(),
    lastMessage: MessagePreview.nullable(),
  })
  .meta({ id: 'ConversationListItem' });

export const ConversationPage = z.object({
  items: z.array(ConversationListItem),
  nextCursor: z.string().nullable(),
});

export const ParticipantChange = z.object({
  conversationId: Id,
  userId: Id,
  role: ParticipantRole.optional(),
  removed: z.boolean().optional(),
});
