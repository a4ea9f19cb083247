// The Socket.IO half of the client: a typed socket that follows the session's tokens
// (auth:refresh, no reconnect needed), comes back after a refused handshake while the session
// lives, and resumes the answers it was following after a reconnect.
import { io, type Socket } from 'socket.io-client';
import type {
  ClientToServerEvents,
  HandshakeAuth,
  ServerToClientEvents,
  SocketError,
} from '../realtime/events.js';
import type { TokenKeeper } from './session.js';
import type { AnswerEvent } from './types.js';

export type ParleySocket = Socket<ServerToClientEvents, ClientToServerEvents>;

type Payload<E extends keyof ClientToServerEvents> = Parameters<ClientToServerEvents[E]>[0];
type AckData<E extends keyof ClientToServerEvents> = Parameters<ClientToServerEvents[E]>[1] extends
  ((result: infer R) => void) | undefined
  ? R extends { ok: true; data: infer D }
    ? D
    : never
  : never;
type AckResult = { ok: true; data: unknown } | { ok: false; error: SocketError };
type EmitWithTimeout = (
  event: string,
  payload: unknown,
  ack: (timedOut: Error | null, result: AckResult) => void,
) => void;

export class SocketCallError extends Error {
  constructor(readonly error: SocketError) {
    super(error.message);
    this.name = 'SocketCallError';
  }
}

export interface RealtimeOptions {
  /** How long `call` waits for the server's ack before rejecting (default 10 s). */
  callTimeoutMs?: number;
}

/** What the server's handshake refusal says when the token is missing, expired or revoked. */
const AUTH_REFUSALS = new Set(['Authentication failed', 'Authentication token required']);
/** Moments, not state: sent only while connected, never queued and replayed after a reconnect. */
const VOLATILE = new Set<keyof ClientToServerEvents>(['typing:start', 'typing:stop']);
/** How many finished answers are remembered, so a late replay of one is not taken for new. */
const ENDED_KEPT = 200;

/** An answer being followed: the last seq taken, and the seq of its error if it failed. */
interface Followed {
  last: number;
  failedAt?: number;
}

export class Realtime {
  private readonly answerListeners = new Set<(event: AnswerEvent) => void>();
  readonly socket: ParleySocket;
  /** Answers being followed, by generation id (resumed after a reconnect). */
  private readonly following = new Map<string, Followed>();
  /** Answers whose resume waits in socket.io's buffer: it goes out at connect, before our handler. */
  private readonly buffered = new Set<string>();
  private readonly ended = new Set<string>();
  private readonly unsubscribe: () => void;
  private readonly callTimeoutMs: number;
  private isClosed = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retries = 0;
  private connectedAt = 0;

  constructor(
    baseUrl: string,
    private readonly tokens: TokenKeeper,
    options: RealtimeOptions = {},
  ) {
    this.callTimeoutMs = options.callTimeoutMs ?? 10_000;
    this.socket = io(baseUrl || undefined, {
      // A function, so every (re)connect presents the newest token.
      auth: (cb: (auth: HandshakeAuth) => void) =>
        cb({ token: tokens.current?.accessToken ?? '', seedEvents: false }),
      transports: ['websocket'],
    });
    this.socket.on('ai:stream:start', (data) => this.answer({ type: 'start', data }));
    this.socket.on('ai:stream:delta', (data) => this.answer({ type: 'delta', data }));
    this.socket.on('ai:error', (data) => this.answer({ type: 'error', data }));
    this.socket.on('ai:stream:end', (data) => this.answer({ type: 'end', data }));
    this.socket.on('connect', () => {
      this.connectedAt = Date.now();
      clearTimeout(this.retryTimer);
      // After a reconnect: exactly the events missed while away, then live. A resume() made while
      // away has just been sent from the buffer, and its caller awaits that one's ack.
      const sent = new Set(this.buffered);
      this.buffered.clear();
      for (const [generationId, { last }] of this.following)
        if (!sent.has(generationId))
          void this.sendResume(generationId, last).catch(() => undefined);
    });
    this.socket.on('connect_error', (error) =>
      this.recover(AUTH_REFUSALS.has(error.message) || this.nearExpiry()),
    );
    this.socket.on('disconnect', (reason) => {
      // The backoff starts over only after a connection that held, not after one that was
      // refused or ended at once, again and again (that would retry as fast as round trips go).
      if (this.connectedAt && Date.now() - this.connectedAt >= 10_000) this.retries = 0;
      this.connectedAt = 0;
      // The server ended the socket (its token ran out, auth:expired): socket.io does not retry.
      if (reason === 'io server disconnect') this.recover(true);
    });
    this.unsubscribe = tokens.onChange((session) => {
      if (!session) return this.close();
      if (this.socket.connected)
        this.call('auth:refresh', { token: session.accessToken }).catch(() => undefined);
    });
  }

  /**
   * Replays an answer's events after `afterSeq` on this socket, then follows it live (`-1`: from
   * its first event, e.g. after a reload or for a view that starts the answer's text again). The
   * events come through `onAnswer` even when some were delivered before. Resolves with the ack
   * (`finished` with nothing `replayed`: the answer ended and its events are gone), also when
   * called before the socket connects (the resume is sent at connect): rejected when refused, or
   * when no ack came within `callTimeoutMs`, counted from this call.
   */
  resume(generationId: string, afterSeq = -1): Promise<AckData<'generation:resume'>> {
    this.ended.delete(generationId);
    this.following.set(generationId, { last: afterSeq });
    if (!this.socket.connected) this.buffered.add(generationId);
    return this.sendResume(generationId, afterSeq).finally(() => {
      // Timed out still in the buffer: the next connect resumes it like any followed answer.
      this.buffered.delete(generationId);
    });
  }

  /** True while an answer is followed (seen started, or resumed, and not yet ended). */
  follows(generationId: string): boolean {
    return this.following.has(generationId);
  }

  /** Answers' events (start, delta, error, end), without repeats. */
  onAnswer(listener: (event: AnswerEvent) => void): () => void {
    this.answerListeners.add(listener);
    return () => this.answerListeners.delete(listener);
  }

  /**
   * A client event with its ack, as a promise; rejected after `callTimeoutMs` without one.
   * Typing events are volatile: dropped (rejected at once) while disconnected, never replayed.
   */
  call<E extends keyof ClientToServerEvents>(event: E, payload: Payload<E>): Promise<AckData<E>> {
    return new Promise((resolve, reject) => {
      const volatile = VOLATILE.has(event);
      if (volatile && !this.socket.connected) return reject(new Error('Not connected'));
      const socket = (volatile ? this.socket.volatile : this.socket).timeout(this.callTimeoutMs);
      // The map's tuple types do not survive the generic key; the call is checked by the signature above.
      (socket.emit as EmitWithTimeout)(event, payload, (timedOut, result) => {
        if (timedOut) reject(timedOut);
        else if (result.ok) resolve(result.data as AckData<E>);
        else reject(new SocketCallError(result.error));
      });
    });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  close(): void {
    this.isClosed = true;
    clearTimeout(this.retryTimer);
    this.unsubscribe();
    this.socket.disconnect();
  }

  private async sendResume(
    generationId: string,
    afterSeq: number,
  ): Promise<AckData<'generation:resume'>> {
    try {
      const result = await this.call('generation:resume', { generationId, afterSeq });
      // Its end went by in the replay, or it ended so long ago that nothing is left to replay.
      if (result.finished) this.following.delete(generationId);
      return result;
    } catch (error) {
      // Refused (gone, or no longer visible): nothing will come; a timeout may still recover.
      if (error instanceof SocketCallError) this.following.delete(generationId);
      throw error;
    }
  }

  private nearExpiry(): boolean {
    const session = this.tokens.current;
    return !!session && session.expiresAt < Date.now() + 5_000;
  }

  /**
   * After a failed handshake or a disconnect by the server. A transport failure leaves socket.io
   * reconnecting by itself (`active`); a refused handshake or a server disconnect does not, so
   * while the session lives this connects again, with a fresh token when `renew`, with backoff.
   */
  private recover(renew: boolean): void {
    if (this.isClosed || !this.tokens.current) return;
    if (this.socket.active) {
      if (renew) void this.tokens.refresh().catch(() => undefined);
      return;
    }
    clearTimeout(this.retryTimer);
    const delay = this.retries === 0 ? 0 : Math.min(1_000 * 2 ** (this.retries - 1), 30_000);
    this.retries += 1;
    this.retryTimer = setTimeout(() => {
      void (async () => {
        if (renew) await this.tokens.refresh().catch(() => undefined);
        if (!this.isClosed && this.tokens.current && !this.socket.active) this.socket.connect();
      })();
    }, delay);
  }

  private answer(event: AnswerEvent): void {
    const { generationId, seq } = event.data;
    if (this.ended.has(generationId)) return;
    const followed = this.following.get(generationId);
    if (followed) {
      // Only the next event: a live one ahead of a replay waits for the replay to bring it (the
      // gap would lose the answer's middle), and repeats go. A failure's `end` shares the seq of
      // its `error`.
      const next =
        event.type === 'end' && followed.failedAt === followed.last
          ? followed.last
          : followed.last + 1;
      if (seq !== next) return;
    }
    if (event.type === 'end') {
      this.following.delete(generationId);
      this.ended.add(generationId);
      for (const oldest of this.ended) {
        if (this.ended.size <= ENDED_KEPT) break;
        this.ended.delete(oldest);
      }
    } else
      this.following.set(generationId, {
        last: seq,
        ...(event.type === 'error' ? { failedAt: seq } : {}),
      });
    for (const listener of this.answerListeners) listener(event);
  }
}
