// Holds a signed-in session's tokens and refreshes the access token before it expires.
import { ParleyError, type AuthTokens, type User } from './types.js';

export interface StoredSession {
  user: User;
  accessToken: string;
  refreshToken: string;
  /** Epoch ms at which the access token expires. */
  expiresAt: number;
  /** Epoch ms at which it is renewed: a minute before expiry, or at 3/4 of a short lifetime. */
  refreshAt: number;
}

/** Refresh this long before expiry, so a request in flight never carries a dead token. */
const REFRESH_MARGIN_MS = 60_000;

export type SessionListener = (session: StoredSession | null) => void;

export class TokenKeeper {
  private session: StoredSession | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private refreshing: Promise<StoredSession | null> | undefined;
  private readonly listeners = new Set<SessionListener>();

  constructor(private readonly baseUrl: string) {}

  get current(): StoredSession | null {
    return this.session;
  }

  /** Called with every new session (sign-in, refresh) and with null at sign-out or a dead session. */
  onChange(listener: SessionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  adopt(tokens: AuthTokens): StoredSession {
    const lifetime = tokens.expiresIn * 1000;
    const now = Date.now();
    const session = {
      user: tokens.user,
      accessToken: tokens.accessToken,
      refreshToken: tokens.refreshToken,
      expiresAt: now + lifetime,
      // A little jitter, so two tabs of one session rarely renew at the same moment (the second
      // would present a refresh token already rotated, and reuse detection ends the session).
      refreshAt:
        now + Math.max(lifetime - REFRESH_MARGIN_MS * (1 + Math.random() / 2), lifetime * 0.75),
    };
    this.set(session);
    return session;
  }

  /** A session kept from before (e.g. a reload): refreshed at once when its token is near its end. */
  restore(session: StoredSession): void {
    this.set(session);
    if (session.refreshAt <= Date.now()) void this.refresh().catch(() => undefined);
  }

  updateUser(user: User): void {
    if (this.session) this.set({ ...this.session, user });
  }

  clear(): void {
    this.set(null);
  }

  /** One refresh at a time: callers that ask together share it. */
  refresh(): Promise<StoredSession | null> {
    this.refreshing ??= this.refreshOnce().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async refreshOnce(): Promise<StoredSession | null> {
    const refreshToken = this.session?.refreshToken;
    if (!refreshToken) return null;
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}/api/auth/refresh`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refreshToken }),
      });
    } catch {
      // Offline: try again shortly, the token may still be good.
      this.schedule(5_000);
      return this.session;
    }
    // Someone signed out or in meanwhile: this answer is about a session no longer held.
    if (this.session?.refreshToken !== refreshToken) return this.session;
    if (response.status === 401) {
      this.clear();
      return null;
    }
    const body = (await response.json().catch(() => null)) as {
      success?: boolean;
      data?: AuthTokens;
      error?: string;
      code?: string;
    } | null;
    if (!response.ok || !body?.data) {
      this.schedule(5_000);
      throw new ParleyError(body?.error ?? 'Refresh failed', response.status, body?.code ?? '');
    }
    return this.adopt(body.data);
  }

  private set(session: StoredSession | null): void {
    this.session = session;
    clearTimeout(this.timer);
    if (session) this.schedule(session.refreshAt - Date.now());
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
