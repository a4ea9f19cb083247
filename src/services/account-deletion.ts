// Deleting one's own account (SPEC §5 Auth, DELETE /api/auth/me): sessions and sockets end, the
// user leaves every conversation the way a leave does (ownership handed on, events announced),
// and then their row goes with everything that was theirs alone (docs/auth.md).
import { conflict, unauthorized } from '../errors.js';
import type { AccountRepository } from '../repositories/account.repository.js';
import type { ParticipantRepository } from '../repositories/participant.repository.js';
import type { UserRepository } from '../repositories/user.repository.js';
import type { FileStorage } from '../storage/storage.js';
import { describeError, type Logger } from '../utils/logger.js';
import type { AuthService, ClientInfo } from './auth.service.js';
import type { ParticipantService } from './participant.service.js';
import type { Principal, SessionService } from './session.service.js';

/**
 * Rounds of "revoke, leave, delete" before giving up with a 409. Another round is only needed
 * when something new referred to the user meanwhile (someone added them to a conversation, a
 * login finished): rare, and each round clears what came before it.
 */
const ROUNDS = 5;

export interface AccountDeletionDeps {
  users: UserRepository;
  accounts: AccountRepository;
  participantRows: ParticipantRepository;
  participants: ParticipantService;
  sessions: SessionService;
  auth: AuthService;
  storage: FileStorage;
  logger: Logger;
}

export class AccountDeletion {
  constructor(private readonly deps: AccountDeletionDeps) {}

  /**
   * Confirms the password (403 when wrong, counted like a failed login), then deletes the account.
   * Requests of the user already under way may still finish, but nothing they leave behind
   * survives: each round first revokes every session and leaves every conversation, and the
   * row is only deleted, under its lock, once no live session or membership refers to it.
   */
  async delete(principal: Principal, password: string, client: ClientInfo): Promise<void> {
    const { users, accounts, sessions } = this.deps;
    const user = await users.getById(principal.userId);
    if (!user) throw unauthorized();
    await this.deps.auth.confirmPassword(user, password, client);
    for (let round = 1; round <= ROUNDS; round++) {
      await sessions.revokeAllOf(user.id, 'account-deleted');
      await this.leaveEverything(user.id);
      const result = await accounts.deleteUser(user.id);
      // 'missing': another request of the user's deleted it first; it is gone either way.
      if (result.status === 'missing') return;
      if (result.status === 'deleted') {
        await this.removeFiles(result.filenames);
        return;
      }
    }
    throw conflict('The account kept changing while it was being deleted; try again');
  }

  /** One conversation at a time, each under its own lock, as leaves are. */
  private async leaveEverything(userId: string): Promise<void> {
    const conversationIds = await this.deps.participantRows.conversationIdsOf(userId);
    for (const conversationId of conversationIds)
      await this.deps.participants.departForDeletion(userId, conversationId);
  }

  /** After the commit; a file that cannot be removed now is an orphan the cleanup job removes. */
  private async removeFiles(filenames: readonly string[]): Promise<void> {
    for (const filename of filenames) {
      await this.deps.storage.remove(filename).catch((error: unknown) =>
        this.deps.logger.warn('Could not remove a deleted account’s file', {
          filename,
          ...describeError(error),
        }),
      );
    }
  }
}
