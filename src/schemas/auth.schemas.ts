// Request bodies of /api/auth (SPEC §5 Auth).
import { z } from 'zod';
import { Id, Timestamp, UserSummary } from './common.schemas.js';
import { AttachmentView, Message } from './message.schemas.js';
import { Conversation } from './conversation.schemas.js';

/** Emails are compared case-insensitively: stored trimmed and lowercased. */
const Email = z
  .string()
  .trim()
  .toLowerCase()
  .max(254, 'must be at most 254 characters')
  .pipe(z.email('must be an email address'));

const Password = z
  .string()
  .min(8, 'must be at least 8 characters')
  .max(128, 'must be at most 128 characters');

export const Username = z
  .string()
  .regex(/^[A-Za-z0-9_]{3,32}$/, 'must be 3–32 letters, digits or underscores');

/** A password being checked, not chosen: any length up to a bound (a wrong one is a 403). */
const PresentedPassword = z.string().min(1, 'is required').max(1024);

export const RegisterBody = z.strictObject({
  email: Email,
  password: Password,
  username: Username.optional(),
});
export type RegisterBody = z.infer<typeof RegisterBody>;

export const LoginBody = z.strictObject({
  email: Email,
  // Not the registration rule: a login with a short password is simply wrong, not malformed.
  password: PresentedPassword,
});
export type LoginBody = z.infer<typeof LoginBody>;

export const RefreshBody = z.strictObject({
  refreshToken: z.string().min(1, 'is required').max(512),
});
export type RefreshBody = z.infer<typeof RefreshBody>;

export const PublicUser = z
  .object({
    id: Id,
    email: z.string(),
    username: z.string().nullable(),
    avatar: z.string().nullable().meta({
      description: 'Where the avatar is served (`/api/attachments/{id}/content`), or null',
    }),
    role: z.enum(['USER', 'ADMIN', 'MODERATOR']),
    emailVerified: z.boolean(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    lastActiveAt: Timestamp,
  })
  .meta({ id: 'User' });

export const AuthResult = z
  .object({
    user: PublicUser,
    accessToken: z.string().meta({ description: 'HS256 JWT; send as Authorization: Bearer' }),
    refreshToken: z.string().meta({ description: 'Opaque; single use, rotated on refresh' }),
    expiresIn: z.int().meta({ description: 'Seconds until the access token expires' }),
  })
  .meta({ id: 'AuthResult' });

export const SessionView = z
  .object({
    id: Id,
    userAgent: z.string().nullable(),
    ipAddress: z.string().nullable(),
    createdAt: Timestamp,
    lastUsedAt: Timestamp,
    expiresAt: Timestamp,
    current: z.boolean(),
  })
  .meta({ id: 'Session' });

export const SessionRevoked = z.object({ sessionId: Id, revoked: z.literal(true) });

export const UpdateMeBody = z.strictObject({
  username: Username.optional().meta({ description: 'Unique ignoring case; 409 when taken' }),
  avatar: Id.nullable().optional().meta({
    description:
      'The id of an image you uploaded (POST /api/attachments), or null to have none. Any signed-in user may then fetch it',
  }),
});
export type UpdateMeBody = z.infer<typeof UpdateMeBody>;

export const ChangePasswordBody = z.strictObject({
  currentPassword: PresentedPassword,
  newPassword: Password,
});
export type ChangePasswordBody = z.infer<typeof ChangePasswordBody>;

export const DeleteAccountBody = z.strictObject({ password: PresentedPassword });
export type DeleteAccountBody = z.infer<typeof DeleteAccountBody>;

export const PasswordChanged = z.object({
  changed: z.literal(true),
  revokedSessions: z.int().meta({ description: 'Your other sessions, now ended' }),
});

export const AccountDeleted = z.object({ deleted: z.literal(true) });

export const LookupQuery = z.strictObject({
  username: Username.meta({ description: 'The exact username (any case)' }),
});
export type LookupQuery = z.infer<typeof LookupQuery>;

export { UserSummary };

/** The export document (GET /api/auth/me/export), for the OpenAPI document; streamed as is. */
export const AccountExport = z
  .object({
    format: z.literal('parley-export/1'),
    exportedAt: Timestamp,
    user: PublicUser,
    sessions: z.array(SessionView),
    conversations: z.array(
      Conversation.extend({
        joinedAt: Timestamp,
        lastReadAt: Timestamp,
        messages: z
          .array(Message)
          .meta({ description: 'Every message, oldest first, on every branch (`superseded`)' }),
      }),
    ),
    uploads: z
      .array(AttachmentView.extend({ messageId: Id.nullable(), createdAt: Timestamp }))
      .meta({ description: 'Every file you uploaded (metadata only), sent or not' }),
  })
  .meta({ id: 'AccountExport' });
