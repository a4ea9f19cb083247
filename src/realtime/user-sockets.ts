// What a user's sockets share on this instance: a cap on how many are open at once
// (SOCKETS_MAX_PER_USER) and one event budget, so opening more sockets buys no more events.
import { EventThrottle, type ThrottleOptions } from './throttle.js';

interface UserEntry {
  sockets: number;
  throttle: EventThrottle;
  /** When the last socket closed; the budget outlives it, so reconnecting does not refill it. */
  idleSince?: number;
}

/** How long a user's spent budget is remembered after their last socket closed. */
const FORGET_AFTER_MS = 60_000;

export class UserSockets {
  private readonly users = new Map<string, UserEntry>();
  private prunedAt = Date.now();

  constructor(
    private readonly maxPerUser: number,
    private readonly throttleOptions?: ThrottleOptions,
  ) {}

  /**
   * Counts one more socket of `userId`, or refuses it (false) when the user has the maximum
   * open. Synchronous, so handshakes finishing together cannot both take the last place.
   */
  admit(userId: string): boolean {
    this.prune();
    const entry = this.users.get(userId);
    if (!entry) {
      this.users.set(userId, { sockets: 1, throttle: new EventThrottle(this.throttleOptions) });
      return true;
    }
    if (entry.sockets >= this.maxPerUser) return false;
    entry.sockets += 1;
    delete entry.idleSince;
    return true;
  }

  /** A socket of `userId` is gone. */
  release(userId: string): void {
    const entry = this.users.get(userId);
    if (!entry) return;
    entry.sockets -= 1;
    if (entry.sockets <= 0) entry.idleSince = Date.now();
  }

  /** Takes one event from the user's shared budget (see EventThrottle.take). */
  take(userId: string): ReturnType<EventThrottle['take']> {
    return this.users.get(userId)?.throttle.take() ?? 'disconnect';
  }

  /** Forgets users idle for a minute (their budget has refilled by then); at most every 10 s. */
  private prune(): void {
    const now = Date.now();
    if (now - this.prunedAt < 10_000) return;
    this.prunedAt = now;
    for (const [userId, entry] of this.users) {
      if (entry.idleSince !== undefined && now - entry.idleSince > FORGET_AFTER_MS)
        this.users.delete(userId);
    }
  }
}
