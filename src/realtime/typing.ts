// Who is typing where. A start without a stop expires by itself after a few seconds, so a
// client that vanishes mid-sentence does not leave "typing…" on everyone's screen.

export const TYPING_TIMEOUT_MS = 5_000;

export class TypingTracker {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    /** Called when a typing state ends on its own (timeout). */
    private readonly onExpire: (conversationId: string, userId: string) => void,
    private readonly timeoutMs = TYPING_TIMEOUT_MS,
  ) {}

  /** Returns true when the user was not already typing there (announce it). */
  start(conversationId: string, userId: string): boolean {
    const key = `${conversationId}|${userId}`;
    const existing = this.timers.get(key);
    if (existing) clearTimeout(existing);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.onExpire(conversationId, userId);
    }, this.timeoutMs);
    timer.unref();
    this.timers.set(key, timer);
    return !existing;
  }

  /** Returns true when the user was typing there (announce the stop). */
  stop(conversationId: string, userId: string): boolean {
    const key = `${conversationId}|${userId}`;
    const timer = this.timers.get(key);
    if (!timer) return false;
    clearTimeout(timer);
    this.timers.delete(key);
    return true;
  }

  clear(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}
