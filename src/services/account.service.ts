// One's own account (SPEC §5 Auth): change username and avatar, change the password (ending
// every other session), and find other people by exact username.
import { conflict, fieldError, notFound, unauthorized } from '../errors.js';
import type { UserRepository } from '../repositories/user.repository.js';
import type { PasswordHasher } from '../utils/password.js';
import {
  toPublicUser,
  type AuthService,
  type ClientInfo,
  type PublicUser,
} from './auth.service.js';
import { isPicture } from './file-kinds.js';
import type { Principal, SessionService } from './session.service.js';
import { toUserSummary } from './views.js';

export class AccountService {
  constructor(
    private readonly users: UserRepository,
    private readonly auth: AuthService,
    private readonly sessions: SessionService,
    private readonly passwords: PasswordHasher,
  ) {}

  /**
   * Changes the username and/or the avatar. An avatar is the id of a picture the caller uploaded
   * (sent in a message or not, but not one whose message was deleted); anything else, whoever's
   * it is, is the same 400, so ids cannot be probed. The picture replaced is left to the cleanup
   * job: an upload no message uses is removed after UPLOAD_UNATTACHED_TTL.
   */
  async updateProfile(
    principal: Principal,
    change: { username?: string | undefined; avatar?: string | null | undefined },
  ): Promise<PublicUser> {
    const result = await this.users.updateProfile(
      principal.userId,
      change,
      (candidate) =>
        candidate !== undefined &&
        candidate.attachment.uploaderId === principal.userId &&
        isPicture(candidate.attachment.mimeType) &&
        !candidate.removed,
    );
    if (result.ok) return toPublicUser(result.user);
    if (result.reason === 'username-taken') throw conflict('Username is already taken');
    if (result.reason === 'avatar-refused')
      throw fieldError('avatar', 'must be the id of an image you uploaded');
    throw unauthorized();
  }

  /**
   * Checks the current password (403 when wrong, counted like a failed login), stores the new one
   * and ends every other session of the user at once, REST and sockets; the caller's stays. Of two
   * changes at once, the second finds the password changed under it: 409, nothing changed.
   */
  async changePassword(
    principal: Principal,
    body: { currentPassword: string; newPassword: string },
    client: ClientInfo,
  ): Promise<{ changed: true; revokedSessions: number }> {
    const user = await this.users.getById(principal.userId);
    if (!user) throw unauthorized();
    // 403 when wrong, and for an account without a password (nothing to confirm it with).
    await this.auth.confirmPassword(user, body.currentPassword, client);
    const next = await this.passwords.hash(body.newPassword);
    const replaced =
      user.passwordHash !== null &&
      (await this.users.replacePasswordHash(user.id, user.passwordHash, next));
    if (!replaced) throw conflict('The password was changed meanwhile; nothing was changed');
    // After the new hash is stored: a login checked against the old password and still writing
    // its session either finished (and is revoked here) or finds the hash changed (401).
    const revokedSessions = await this.sessions.revokeAllOf(
      user.id,
      'password-changed',
      principal.sessionId,
    );
    return { changed: true, revokedSessions };
  }

  /** Someone by their exact username, ignoring case; 404 otherwise (no partial matches). */
  async lookup(username: string) {
    const user = await this.users.getByUsername(username);
    if (!user) throw notFound('User');
    return toUserSummary(user);
  }
}
