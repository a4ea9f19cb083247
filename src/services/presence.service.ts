// Online/offline: a user is online while at least one of their sockets is connected. The
// gateway tells whoever shares a conversation with them; nobody else (the seed told every socket).
import type { PresenceStore } from '../infra/presence-store.js';
import type { UserRepository } from '../repositories/user.repository.js';

export class PresenceService {
  constructor(
    private readonly store: PresenceStore,
    private readonly users: UserRepository,
  ) {}

  /** Records a socket; true when it brought the user online (their first). */
  async connected(userId: string, socketId: string): Promise<boolean> {
    const count = await this.store.add(userId, socketId);
    await this.users.touchLastActive(userId);
    return count === 1;
  }

  /** Forgets a socket; true when it took the user offline (their last). */
  async disconnected(userId: string, socketId: string): Promise<boolean> {
    const count = await this.store.remove(userId, socketId);
    if (count === 0) await this.users.touchLastActive(userId);
    return count === 0;
  }
}
