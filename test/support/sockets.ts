// Socket.IO clients for tests: connect as a user, record everything a socket receives, and
// assert on what arrived (or did not) within a window.
import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, ServerToClientEvents } from '../../src/realtime/events.js';

export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface Received {
  event: string;
  payload: unknown;
}

export interface RecordingSocket {
  socket: ClientSocket;
  /** Every event received since connecting (or the last clear). */
  received: Received[];
  of(event: string): unknown[];
  clear(): void;
  /** Resolves with the first matching event, or rejects after `timeoutMs`. */
  next(event: string, match?: (payload: unknown) => boolean, timeoutMs?: number): Promise<unknown>;
  close(): void;
}

export interface ConnectOptions {
  /** Put the token in the Authorization header instead of auth.token. */
  viaHeader?: boolean;
  /** More handshake auth fields (e.g. seedEvents: false). */
  auth?: Record<string, unknown>;
}

export function connectRaw(
  url: string,
  token: string | undefined,
  options: ConnectOptions = {},
): ClientSocket {
  return io(url, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    timeout: 5_000,
    ...(token && options.viaHeader
      ? { extraHeaders: { authorization: `Bearer ${token}` } }
      : { auth: { ...(token ? { token } : {}), ...options.auth } }),
  });
}

/** Connects and records; rejects with the server's connect_error message. */
export async function connectAs(
  url: string,
  token: string | undefined,
  options: ConnectOptions = {},
): Promise<RecordingSocket> {
  const socket = connectRaw(url, token, options);
  const received: Received[] = [];
  const waiters: Array<{
    event: string;
    match: (p: unknown) => boolean;
    resolve: (p: unknown) => void;
  }> = [];
  socket.onAny((event: string, payload: unknown) => {
    received.push({ event, payload });
    for (const waiter of [...waiters]) {
      if (waiter.event === event && waiter.match(payload)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(payload);
      }
    }
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (error) => reject(error));
  });
  return {
    socket,
    received,
    of: (event) => received.filter((r) => r.event === event).map((r) => r.payload),
    clear: () => void received.splice(0),
    next: (event, match = () => true, timeoutMs = 3_000) => {
      const earlier = received.find((r) => r.event === event && match(r.payload));
      if (earlier) return Promise.resolve(earlier.payload);
      return new Promise((resolve, reject) => {
        const waiter = { event, match, resolve };
        waiters.push(waiter);
        setTimeout(() => {
          if (waiters.includes(waiter)) {
            waiters.splice(waiters.indexOf(waiter), 1);
            reject(
              new Error(
                `no ${event} within ${timeoutMs} ms; received: ${received.map((r) => r.event).join(', ')}`,
              ),
            );
          }
        }, timeoutMs);
      });
    },
    close: () => {
      socket.disconnect();
    },
  };
}

export type AckResult =
  { ok: true; data: unknown } | { ok: false; error: { code: string; message: string } };

/** Emits an event with an ack and resolves with the server's answer. */
export function request(
  socket: ClientSocket,
  event: string,
  payload: unknown,
  timeoutMs = 3_000,
): Promise<AckResult> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${event}`)), timeoutMs);
    (socket as unknown as { emit(e: string, p: unknown, ack: (r: AckResult) => void): void }).emit(
      event,
      payload,
      (result) => {
        clearTimeout(timer);
        resolve(result);
      },
    );
  });
}

/** Emits without an ack (as a careless client would). */
export function fire(socket: ClientSocket, event: string, ...args: unknown[]): void {
  (socket as unknown as { emit(e: string, ...a: unknown[]): void }).emit(event, ...args);
}

/** Waits long enough for anything that was going to arrive to have arrived. */
export const settle = (ms = 300) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A test file's server and its sockets: starts the server before the file, closes every socket
 * the test opened after each test, and the server after the file.
 */
export function socketSuite(
  hooks: {
    beforeAll: (fn: () => Promise<void>) => void;
    afterEach: (fn: () => void) => void;
    afterAll: (fn: () => Promise<void>) => void;
  },
  start: () => Promise<{ url: string; close(): Promise<void> }>,
) {
  let server: { url: string; close(): Promise<void> } | undefined;
  const open: RecordingSocket[] = [];
  hooks.beforeAll(async () => {
    server = await start();
  });
  hooks.afterEach(() => {
    for (const socket of open.splice(0)) socket.close();
  });
  hooks.afterAll(async () => {
    await server?.close();
  });
  return {
    /** Connects as a user; the socket is closed after the test. */
    async connect(user: { accessToken?: string }, options: ConnectOptions = {}, url = server!.url) {
      const socket = await connectAs(url, user.accessToken, options);
      open.push(socket);
      return socket;
    },
  };
}
