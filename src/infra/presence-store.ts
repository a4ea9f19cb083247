// How many sockets each user has open. In-process for one instance; RedisPresenceStore
// (redis-presence-store.ts) makes presence correct across instances, with sockets that expire
// unless their instance keeps refreshing them, so a crashed instance's users go offline.

/** Socket ids by user id: all of one process's live sockets. */
export type SocketIdsByUser = ReadonlyMap<string, readonly string[]>;

export interface PresenceStore {
  /**
   * Records a socket; returns how many live sockets the user has now. With `max`, a socket not
   * recorded yet is refused (-1, nothing recorded) when the user has `max` already: one atomic
   * step, so concurrent handshakes on any instances cannot pass the cap together.
   */
  add(userId: string, socketId: string, max?: number): Promise<number>;
  /** Forgets a socket; returns how many live sockets the user has left. */
  remove(userId: string, socketId: string): Promise<number>;
  /**
   * Says these sockets are still open (a heartbeat with all of this process's sockets); a socket
   * the store had lost (expired, swept, Redis restarted empty) is recorded again. Returns the
   * users who had no live socket before: they are back online.
   */
  refresh(socketIdsByUser: SocketIdsByUser): Promise<string[]>;
  /**
   * Drops the sockets whose time ran out (their instance stopped refreshing) and returns the
   * users left with none. Each such user is returned once, to one caller, however many
   * instances sweep at the same time.
   */
  sweepExpired(): Promise<string[]>;
  /**
   * Which of these users are online now: they have a socket the sweep has not taken away (the
   * same moment `user:offline` is told, so a snapshot and the events agree).
   */
  online(userIds: readonly string[]): Promise<Set<string>>;
}

/**
 * One process's sockets, which cannot outlive it: nothing expires, so nothing is swept, and a
 * refresh only re-adds what it names (as the Redis store does).
 */
export class MemoryPresenceStore implements PresenceStore {
  private readonly sockets = new Map<string, Set<string>>();

  add(userId: string, socketId: string, max?: number): Promise<number> {
    const set = this.sockets.get(userId) ?? new Set<string>();
    if (max !== undefined && !set.has(socketId) && set.size >= max) return Promise.resolve(-1);
    set.add(socketId);
    this.sockets.set(userId, set);
    return Promise.resolve(set.size);
  }

  remove(userId: string, socketId: string): Promise<number> {
    const set = this.sockets.get(userId);
    if (!set) return Promise.resolve(0);
    set.delete(socketId);
    if (set.size === 0) this.sockets.delete(userId);
    return Promise.resolve(set.size);
  }

  refresh(socketIdsByUser: SocketIdsByUser): Promise<string[]> {
    const back: string[] = [];
    for (const [userId, socketIds] of socketIdsByUser) {
      if (socketIds.length === 0) continue;
      const set = this.sockets.get(userId);
      if (!set) back.push(userId);
      const updated = set ?? new Set<string>();
      for (const socketId of socketIds) updated.add(socketId);
      this.sockets.set(userId, updated);
    }
    return Promise.resolve(back);
  }

  sweepExpired(): Promise<string[]> {
    return Promise.resolve([]);
  }

  online(userIds: readonly string[]): Promise<Set<string>> {
    return Promise.resolve(new Set(userIds.filter((userId) => this.sockets.has(userId))));
  }
}
