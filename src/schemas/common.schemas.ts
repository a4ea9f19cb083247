// Building blocks shared by request and response schemas.
import { z } from 'zod';

/** cuid2 ids (and anything similar): lowercase alphanumerics, bounded length. */
export const Id = z
  .string()
  .regex(/^[a-z0-9]{1,64}$/, 'must be an id')
  .meta({ description: 'An id (cuid2)', example: 'tz4a98xxat96iws9zmbrgj3a' });

export const IdParams = z.strictObject({ id: Id });
export type IdParams = z.infer<typeof IdParams>;

/** Timestamps leave the server as ISO-8601 strings (JSON.stringify of a Date). */
export const Timestamp = z.iso.datetime().meta({ example: '2026-11-23T22:53:36.620Z' });

/** A query-string integer with bounds and a default. */
export const QueryInt = (min: number, max: number, fallback: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

/** The error envelope every 4xx/5xx carries (SPEC §5). */
export const ErrorEnvelope = z
  .object({
    success: z.literal(false),
    error: z.string().meta({ description: 'A human-readable message' }),
    code: z.enum([
      'VALIDATION_ERROR',
      'UNAUTHORIZED',
      'FORBIDDEN',
      'NOT_FOUND',
      'CONFLICT',
      'PAYLOAD_TOO_LARGE',
      'UNSUPPORTED_MEDIA_TYPE',
      'RANGE_NOT_SATISFIABLE',
      'RATE_LIMITED',
      'INTERNAL',
      'UNAVAILABLE',
    ]),
    details: z.unknown().optional(),
    requestId: z.string().optional(),
  })
  .meta({ id: 'Error' });

/** The success envelope around a payload schema. */
export const Envelope = <T extends z.ZodType>(data: T) =>
  z.object({ success: z.literal(true), data });

export const UserSummary = z
  .object({ id: Id, username: z.string().nullable(), avatar: z.string().nullable() })
  .meta({ id: 'UserSummary' });
