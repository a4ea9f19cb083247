// A token bucket per user (shared by their sockets): a client may send short bursts, not floods. Past the budget,
// events are dropped; a client that keeps flooding is disconnected.

export interface ThrottleOptions {
  /** Events a client may send at once. */
  burst: number;
  /** Events per second it earns back. */
  perSecond: number;
  /** Dropped events within `windowMs` after which the client is cut off. */
  dropLimit: number;
  windowMs: number;
}

export const DEFAULT_THROTTLE: ThrottleOptions = {
  burst: 60,
  perSecond: 30,
  dropLimit: 500,
  windowMs: 10_000,
};

export class EventThrottle {
  private tokens: number;
  private updatedAt = Date.now();
  private drops = 0;
  private dropsSince = Date.now();

  constructor(private readonly options: ThrottleOptions = DEFAULT_THROTTLE) {
    this.tokens = options.burst;
  }

  /** 'allow', 'drop' (over budget), or 'disconnect' (flooding). */
  take(now = Date.now()): 'allow' | 'drop' | 'disconnect' {
    const { burst, perSecond, dropLimit, windowMs } = this.options;
    this.tokens = Math.min(burst, this.tokens + ((now - this.updatedAt) / 1000) * perSecond);
    this.updatedAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 'allow';
    }
    if (now - this.dropsSince > windowMs) {
      this.drops = 0;
      this.dropsSince = now;
    }
    this.drops += 1;
    if (this.drops <= dropLimit) return 'drop';
    // The flooding connection is cut off; the user's other sockets start counting afresh.
    this.drops = 0;
    this.dropsSince = now;
    return 'disconnect';
  }
}
