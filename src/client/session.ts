// Holds a signed-in session's tokens and refreshes the access token before it expires, one
// refresh at a time across every tab that shares the session.
import { unwrap } from './envelope.js';
import type { AuthTokens, User } from './types.js';

export interface StoredSession {
  user: User;
  accessToken: string;
  refreshToken: string;
  /** Epoch ms at which the access token expires. */
  expiresAt: number;
  /** Epoch ms at which it is renewed: a minute before expiry, or at 3/4 of a short lifetime. */
  refreshAt: number;
}

/**
 * Where the session is kept for other tabs and reloads (e.g. `localStorage`). When given, every
 * new session is saved there, and a refresh first reads it: another tab may have renewed already.
 */
export interface SessionStore {
  load(): StoredSession | null;
  save(session: StoredSession | null): void;
}

/** Runs `task` while holding the lock `name`, exclusively across tabs (Web Locks in a browser). */
export type LockRunner = <T>(name: string, task: () => Promise<T>) => Promise<T>;

export interface TokenKeeperOptions {
  store?: SessionStore;
  /**
   * Default: `navigator.locks` when the platform has it, else none (one process, one keeper).
   * Browsers have Web Locks only in secure contexts (https, localhost): elsewhere tabs get none.
   */
  lock?: LockRunner;
  /**
   * How long a refresh may take before it counts as failed (default 15 s): it runs holding the
   * lock, so a hung one would stall every tab's renewal.
   */
  refreshTimeoutMs?: number;
}

/** Refresh this long before expiry, so a request in flight never carries a dead token. */
const REFRESH_MARGIN_MS = 60_000;
const LOCK_NAME = 'parley.session.refresh';

export type SessionListener = (session: StoredSession | null) => void;

interface LockManagerLike {
  request<T>(name: string, task: () => Promise<T>): Promise<T>;
}

function platformLock(): LockRunner {
  const locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks;
  if (locks) return (name, task) => locks.request(name, task);
  return (_name, task) => task();
}

export class TokenKeeper {
  private session: StoredSession | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private refreshing: Promise<StoredSession | null> | undefined;
  private readonly listeners = new Set<SessionListener>();
  private readonly store: SessionStore | undefined;
  private readonly lock: LockRunner;
  private readonly refreshTimeoutMs: number;

  constructor(
    private readonly baseUrl: string,
    options: TokenKeeperOptions = {},
  ) {
    this.store = options.store;
    this.lock = options.lock ?? platformLock();
    this.refreshTimeoutMs = options.refreshTimeoutMs ?? 15_000;
  }

  get current(): StoredSession | null {
    return this.session;
  }

  /** Called with every new session (sign-in, refresh) and with null at sign-out or a dead session. */
  onChange(listener: SessionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  adopt(tokens: AuthTokens): StoredSession {
    // The token's `exp` is whole seconds from when the server signed it (its iat rounded down),
    // so it may end up to a second before `expiresIn` after this moment: count a second less.
    const lifetime = Math.max(0, tokens.expiresIn - 1) * 1000;
    const now = Date.now();
    const session = {
      user: tokens.user,
      accessToken: tokens.accessToken,
      refreshToken: tokens.refreshToken,
      expiresAt: now + lifetime,
      // A little jitter, so two tabs of one session rarely reach for the lock at the same moment.
      refreshAt:
        now + Math.max(lifetime - REFRESH_MARGIN_MS * (1 + Math.random() / 2), lifetime * 0.75),
    };
    this.set(session);
    return session;
  }

  /**
   * A session kept from before (a reload, or another tab's renewal): refreshed at once when its
   * token is near its end. Its refresh time gets a jitter of this tab's own, so tabs that adopt
   * one renewal do not all reach for the next one together; the jitter stays in memory (saved,
   * every reload would move the kept refresh time earlier).
   */
  restore(session: StoredSession): void {
    this.take(session);
  }

  /**
   * The stored session changed in another tab (a `storage` event): its renewal is taken (the
   * refresh token held here is spent now), its sign-out ends this one too. False when it holds
   * another user's session: the caller decides (the page reloads).
   */
  sync(stored: StoredSession | null): boolean {
    if (!stored) {
      if (this.session) this.set(null, false);
      return true;
    }
    if (stored.user.id !== this.session?.user.id) return false;
    if (
      stored.refreshToken !== this.session.refreshToken &&
      stored.expiresAt > this.session.expiresAt
    )
      this.take(stored);
    return true;
  }

  updateUser(user: User): void {
    if (this.session) this.set({ ...this.session, user });
  }

  clear(): void {
    this.set(null);
  }

  /** One refresh at a time: callers that ask together share it, and so do tabs (the lock). */
  refresh(): Promise<StoredSession | null> {
    this.refreshing ??= this.lock(LOCK_NAME, () => this.refreshOnce()).finally(
      () => (this.refreshing = undefined),
    );
    return this.refreshing;
  }

  private async refreshOnce(): Promise<StoredSession | null> {
    // Inside the lock: a tab that renewed while this one waited has stored the new tokens, and
    // the refresh token held here is spent (presenting it again revokes the session).
    const held = this.session?.refreshToken;
    const stored = this.store?.load();
    if (stored && this.sync(stored) && this.session?.refreshToken !== held) return this.session;
    const refreshToken = this.session?.refreshToken;
    if (!refreshToken) return null;
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}/api/auth/refresh`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refreshToken }),
        signal: AbortSignal.timeout(this.refreshTimeoutMs),
      });
    } catch {
      // Offline, or no answer in time: try again shortly, the token may still be good (only the
      // server's refusal ends the session).
      this.schedule(5_000);
      return this.session;
    }
    // Someone signed out or in meanwhile: this answer is about a session no longer held.
    if (this.session?.refreshToken !== refreshToken) return this.session;
    if (response.status === 401) {
      this.clear();
      return null;
    }
    try {
      return this.adopt(await unwrap<AuthTokens>(response));
    } catch (error) {
      this.schedule(5_000);
      throw error;
    }
  }

  /** A session that came from the store (or is put there otherwise): not saved again. */
  private take(session: StoredSession): void {
    const spread = Math.min(
      REFRESH_MARGIN_MS / 2,
      Math.max(0, session.expiresAt - session.refreshAt) / 2,
    );
    this.set({ ...session, refreshAt: session.refreshAt - Math.random() * spread }, false);
    if (session.refreshAt <= Date.now()) void this.refresh().catch(() => undefined);
  }

  private set(session: StoredSession | null, save = true): void {
    this.session = session;
    clearTimeout(this.timer);
    if (session) this.schedule(session.refreshAt - Date.now());
    if (save) this.store?.save(session);
    for (const listener of this.listeners) listener(session);
  }

  private schedule(inMs: number): void {
    clearTimeout(this.timer);
    // A timer's delay is a 32-bit int: a far expiry is checked again later.
    this.timer = setTimeout(
      () => void this.refresh().catch(() => undefined),
      Math.max(500, Math.min(inMs, 2 ** 31 - 1)),
    );
    const t = this.timer as { unref?: () => void };
    t.unref?.();
  }
}
