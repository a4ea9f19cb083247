// Request bodies of /api/auth (SPEC §5 Auth).
import { z } from 'zod';
import { Id, Timestamp } from './common.schemas.js';

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

export const RegisterBody = z.strictObject({
  email: Email,
  password: Password,
  username: z
    .string()
    .regex(/^[A-Za-z0-9_]{3,32}$/, 'must be 3–32 letters, digits or underscores')
    .optional(),
});
export type RegisterBody = z.infer<typeof RegisterBody>;

export const LoginBody = z.strictObject({
  email: Email,
  // Not the registration rule: a login with a short password is simply wrong, not malformed.
  password: z.string().min(1, 'is required').max(1024),
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
    avatar: z.string().nullable(),
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
