// Who may do what in a conversation: participant roles OWNER > ADMIN > MEMBER, and the global
// roles. Not a participant: 403 for everything in it (the seed's rule), except that global
// admins and moderators may delete any message (SPEC §5).
import type { ParticipantRole, UserRole } from '../db/schema.js';
import { forbidden, notFound } from '../errors.js';

const RANK: Record<ParticipantRole, number> = { OWNER: 3, ADMIN: 2, MEMBER: 1 };

export const atLeast = (role: ParticipantRole, minimum: ParticipantRole): boolean =>
  RANK[role] >= RANK[minimum];

/** Global moderation powers: deleting any message. */
export const canModerate = (role: UserRole): boolean => role === 'ADMIN' || role === 'MODERATOR';

/**
 * The caller's role in a live conversation: 404 when it does not exist (or was deleted), 403
 * when the caller is not a participant or ranks below `minimum`.
 */
export function requireRole<T extends { role: ParticipantRole | null }>(
  access: T | undefined,
  minimum: ParticipantRole = 'MEMBER',
  what = 'Conversation',
): T & { role: ParticipantRole } {
  if (!access) throw notFound(what);
  if (!access.role) throw forbidden('You are not a participant of this conversation');
  if (!atLeast(access.role, minimum)) {
    throw forbidden(
      `Only the conversation's ${minimum === 'OWNER' ? 'owner' : 'owner or admins'} can do that`,
    );
  }
  return access as T & { role: ParticipantRole };
}

/**
 * `requireRole` for the caller of a membership change, read under the conversation's lock (the
 * conversation exists: it was locked). Returns the caller's role.
 */
export async function requireLockedRole(
  members: { roleOf(userId: string): Promise<ParticipantRole | undefined> },
  userId: string,
  minimum: ParticipantRole = 'MEMBER',
): Promise<ParticipantRole> {
  return requireRole({ role: (await members.roleOf(userId)) ?? null }, minimum).role;
}
