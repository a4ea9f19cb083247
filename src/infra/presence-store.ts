// How many sockets each user has open. In-process now; a Redis implementation of the same
// interface makes presence correct across instances.

export interface PresenceStore {
  /** Records a socket; returns how many the user has now. */
  add(userId: string, socketId: string): Promise<number>;
  /** Forgets a socket; returns how many the user has left. */
  remove(userId: string, socketId: string): Promise<number>;
}

export class MemoryPresenceStore implements PresenceStore {
  private readonly sockets = new Map<string, Set<string>>();

  add(userId: string, socketId: string): Promise<number> {
    const set = this.sockets.get(userId) ?? new Set<string>();
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
}
