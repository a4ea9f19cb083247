// The Socket.IO half of the client: a typed socket that follows the session's tokens
// (auth:refresh, no reconnect needed) and resumes the answers it was following after a reconnect.
import { io, type Socket } from 'socket.io-client';
import type {
  ClientToServerEvents,
  HandshakeAuth,
  ServerToClientEvents,
  SocketError,
} from '../realtime/events.js';
import type { TokenKeeper } from './session.js';

export type ParleySocket = Socket<ServerToClientEvents, ClientToServerEvents>;

type Payload<E extends keyof ClientToServerEvents> = Parameters<ClientToServerEvents[E]>[0];
type AckData<E extends keyof ClientToServerEvents> = Parameters<ClientToServerEvents[E]>[1] extends
  ((result: infer R) => void) | undefined
  ? R extends { ok: true; data: infer D }
    ? D
    : never
  : never;

export class SocketCallError extends Error {
  constructor(readonly error: SocketError) {
    super(error.message);
    this.name = 'SocketCallError';
  }
}

type ServerPayload<E extends keyof ServerToClientEvents> = Parameters<ServerToClientEvents[E]>[0];

/** An answer's events, each once, in order, across replays and reconnects. */
export type AnswerEvent =
  | { type: 'start'; data: ServerPayload<'ai:stream:start'> }
  | { type: 'delta'; data: ServerPayload<'ai:stream:delta'> }
  | { type: 'end'; data: ServerPayload<'ai:stream:end'> }
  | { type: 'error'; data: ServerPayload<'ai:error'> };

export class Realtime {
  private readonly answerListeners = new Set<(event: AnswerEvent) => void>();
  readonly socket: ParleySocket;
  /** Answers being followed: generation id → the last seq seen (to resume after a reconnect). */
  private readonly following = new Map<string, number>();
  private readonly unsubscribe: () => void;
  private isClosed = false;

  constructor(
    baseUrl: string,
    private readonly tokens: TokenKeeper,
  ) {
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
      // After a reconnect: exactly the events missed while away, then live.
      for (const [generationId, afterSeq] of this.following)
        this.call('generation:resume', { generationId, afterSeq }).catch(() =>
          this.following.delete(generationId),
        );
    });
    this.socket.on('connect_error', () => {
      // A dead token: a fresh one is fetched and the next attempt uses it.
      if (this.tokens.current && this.tokens.current.expiresAt < Date.now() + 5_000)
        void this.tokens.refresh().catch(() => undefined);
    });
    this.unsubscribe = tokens.onChange((session) => {
      if (!session) return this.close();
      if (this.socket.connected)
        this.call('auth:refresh', { token: session.accessToken }).catch(() => undefined);
    });
  }

  /** Replays an answer's events after `afterSeq` on this socket, then follows it live. */
  resume(generationId: string, afterSeq = -1): Promise<unknown> {
    this.following.set(generationId, afterSeq);
    // Not connected yet: the connect handler resumes everything followed.
    if (!this.socket.connected) return Promise.resolve();
    return this.call('generation:resume', { generationId, afterSeq });
  }

  /** Answers' events (start, delta, error, end), without repeats. */
  onAnswer(listener: (event: AnswerEvent) => void): () => void {
    this.answerListeners.add(listener);
    return () => this.answerListeners.delete(listener);
  }

  /** A client event with its ack, as a promise. */
  call<E extends keyof ClientToServerEvents>(event: E, payload: Payload<E>): Promise<AckData<E>> {
    return new Promise((resolve, reject) => {
      const ack = (result: { ok: true; data: unknown } | { ok: false; error: SocketError }) =>
        result.ok ? resolve(result.data as AckData<E>) : reject(new SocketCallError(result.error));
      // The map's tuple types do not survive the generic key; the call is checked by the signature above.
      (this.socket.emit as (e: string, p: unknown, a: typeof ack) => void)(event, payload, ack);
    });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  close(): void {
    this.isClosed = true;
    this.unsubscribe();
    this.socket.disconnect();
  }

  private answer(event: AnswerEvent): void {
    const { generationId, seq } = event.data;
    const last = this.following.get(generationId);
    if (last !== undefined && seq <= last) return;
    if (event.type === 'end') this.following.delete(generationId);
    else this.following.set(generationId, seq);
    for (const listener of this.answerListeners) listener(event);
  }
}
