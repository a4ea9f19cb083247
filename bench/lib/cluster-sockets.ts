// The Socket.IO clients of bench/cluster.ts, in the benchmark's process (its clock is the one
// sends are timed on): connecting many at once, and knowing when the servers have gone quiet
// (presence broadcasts after a wave of connects) so a measurement starts from rest.
import { io, type Socket } from 'socket.io-client';

export const clock = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let lastEventAt = 0;

/** A client as today's apps connect: WebSocket only, without the seed's `message:received`. */
export function connectSocket(url: string, token: string): Promise<Socket> {
  const socket = io(url, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    auth: { token, seedEvents: false },
  });
  socket.onAny(() => (lastEventAt = clock()));
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (error) => reject(new Error(`socket: ${error.message}`)));
  });
}

/** Connects `count` sockets, `batch` handshakes at a time; `target(i)` is the i-th's URL. */
export async function connectMany(
  tokens: string[],
  target: (i: number) => string,
  batch = 40,
): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let i = 0; i < tokens.length; i += batch) {
    const slice = tokens.slice(i, i + batch);
    sockets.push(
      ...(await Promise.all(slice.map((token, j) => connectSocket(target(i + j), token)))),
    );
  }
  return sockets;
}

/** Resolves once no socket has received anything for `quietMs` (at most `maxMs`). */
export async function waitQuiet(quietMs = 500, maxMs = 20_000): Promise<void> {
  const started = clock();
  while (clock() - lastEventAt < quietMs) {
    if (clock() - started > maxMs) throw new Error('the servers did not go quiet');
    await sleep(100);
  }
}

/** Calls `tick(i)` `count` times at `perSecond` on a fixed schedule; resolves when all settled. */
export async function steady(
  count: number,
  perSecond: number,
  tick: (i: number) => Promise<void>,
): Promise<void> {
  const start = clock();
  const running: Array<Promise<void>> = [];
  for (let i = 0; i < count; i++) {
    const wait = start + (i * 1000) / perSecond - clock();
    if (wait > 0) await sleep(wait);
    const sent = tick(i);
    sent.catch(() => undefined); // reported by Promise.all below, not as an unhandled rejection
    running.push(sent);
  }
  await Promise.all(running);
}

/** Resolves when `done()` holds, polling; rejects after `maxMs` with `what` in the message. */
export async function until(done: () => boolean, what: string, maxMs = 60_000): Promise<void> {
  const started = clock();
  while (!done()) {
    if (clock() - started > maxMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
