// Online/offline: a user is online while at least one of their sockets is connected, on any
// instance. The gateway tells whoever shares a conversation with them; nobody else (the seed told
// every socket). Sockets of an instance that stopped refreshing them (it crashed) expire, and a
// sweep takes their users offline.
import type { PresenceStore } from '../infra/presence-store.js';
import type { UserRepository } from '../repositories/user.repository.js';

export interface LiveSocket {
  userId: string;
  socketId: string;
}

export class PresenceService {
  constructor(
    private readonly store: PresenceStore,
    private readonly users: UserRepository,
    /** A lastActiveAt the sweep could not write (the offline is still reported). */
    private readonly onRecordFailed: (error: unknown, userId: string) => void = () => {},
  ) {}

  /**
   * A place for a new socket among the user's, cluster-wide: false when the user has `max` open
   * (on any instance). The socket is recorded; `connected` then only confirms it.
   */
  async admit(userId: string, socketId: string, max: number): Promise<boolean> {
    return (await this.store.add(userId, socketId, max)) >= 0;
  }

  /** Gives back a place `admit` took for a socket that never connected. */
  async release(userId: string, socketId: string): Promise<void> {
    await this.store.remove(userId, socketId);
  }

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

  /** Which of these users are online now, cluster-wide. */
  async onlineAmong(userIds: readonly string[]): Promise<Set<string>> {
    return this.store.online(userIds);
  }

  /**
   * Keeps this process's sockets alive (all of them, every heartbeat). Returns the users the
   * store had taken offline meanwhile (this process stalled past the TTL, or Redis lost its
   * data) and who are back online now.
   */
  async heartbeat(sockets: readonly LiveSocket[]): Promise<string[]> {
    const byUser = new Map<string, string[]>();
    for (const { userId, socketId } of sockets) {
      const ids = byUser.get(userId);
      if (ids) ids.push(socketId);
      else byUser.set(userId, [socketId]);
    }
    return this.store.refresh(byUser);
  }

  /**
   * Users whose every socket expired (their instance stopped refreshing): offline now, each
   * returned to one caller across all instances. Their lastActiveAt is recorded as on a
   * disconnect; a failed write does not hold back the offline (the store has already let them go).
   */
  async sweepOffline(): Promise<string[]> {
    const gone = await this.store.sweepExpired();
    await Promise.all(
      gone.map((userId) =>
        this.users.touchLastActive(userId).catch((error: unknown) => {
          this.onRecordFailed(error, userId);
        }),
      ),
    );
    return gone;
  }
}
