// The client side of bench/fanout.ts, in its own process so the server's process holds only
// the server: 1,000 Socket.IO clients (or 1,000 bare WebSocket clients), a sender at a steady
// rate, and send→receive latency measured on the receivers.
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';

type Command =
  | { type: 'connect-io'; url: string; tokens: string[] }
  | { type: 'run-io'; conversationId: string; count: number; perSecond: number }
  | { type: 'connect-ws'; url: string; clients: number }
  | { type: 'run-ws'; count: number; perSecond: number; payloadBytes: number }
  | { type: 'close' };

const send = (message: unknown) => process.send!(message);
const clock = () => performance.timeOrigin + performance.now();

let ioClients: Socket[] = [];
let wsClients: WebSocket[] = [];

/** Collects latencies until `expected` deliveries arrived (or a deadline passes). */
function collector(expected: number) {
  const latencies: number[] = [];
  let lastReceive = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const deadline = setTimeout(() => done(), 60_000);
  return {
    record(sentAt: number) {
      const now = clock();
      latencies.push(now - sentAt);
      lastReceive = now;
      if (latencies.length >= expected) {
        clearTimeout(deadline);
        done();
      }
    },
    finished,
    summary(firstSend: number) {
      const sorted = [...latencies].sort((a, b) => a - b);
      const at = (p: number) =>
        sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
      return {
        deliveries: latencies.length,
        expected,
        seconds: (lastReceive - firstSend) / 1000,
        deliveriesPerSecond: latencies.length / ((lastReceive - firstSend) / 1000),
        p50Ms: at(50),
        p99Ms: at(99),
      };
    },
  };
}

/** Calls `tick(i)` `count` times at `perSecond`, on a fixed schedule (no drift). */
async function steady(count: number, perSecond: number, tick: (i: number) => void) {
  const start = clock();
  for (let i = 0; i < count; i++) {
    const due = start + (i * 1000) / perSecond;
    const wait = due - clock();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    tick(i);
  }
  return start;
}

process.on('message', async (command: Command) => {
  if (command.type === 'connect-io') {
    let connected = 0;
    ioClients = command.tokens.map((token) => {
      const socket = io(command.url, {
        transports: ['websocket'],
        forceNew: true,
        reconnection: false,
        auth: { token, ...(process.env.BENCH_SEED_EVENTS === '0' ? { seedEvents: false } : {}) },
      });
      socket.once('connect', () => {
        connected += 1;
        if (connected === command.tokens.length) send({ type: 'connected', count: connected });
      });
      socket.once('connect_error', (error) => send({ type: 'error', message: error.message }));
      return socket;
    });
  } else if (command.type === 'run-io') {
    const receivers = ioClients;
    const results = collector(command.count * receivers.length);
    let sample = '';
    for (const socket of receivers) {
      socket.off('message:new');
      socket.on('message:new', (payload: { message: { metadata: { t: number } } }) => {
        if (!sample) sample = JSON.stringify(payload);
        results.record(payload.message.metadata.t);
      });
    }
    // Ten people talking, not one machine-gun sender (each socket's event budget is 30/s).
    const senders = ioClients.slice(0, 10);
    const firstSend = await steady(command.count, command.perSecond, (i) => {
      senders[i % senders.length]!.emit('message:send', {
        conversationId: command.conversationId,
        content: `fanout message ${i}`,
        metadata: { t: clock() },
      });
    });
    await results.finished;
    send({
      type: 'result',
      ...results.summary(firstSend),
      payloadBytes: Buffer.byteLength(sample),
    });
  } else if (command.type === 'connect-ws') {
    let connected = 0;
    wsClients = Array.from({ length: command.clients }, () => {
      const ws = new WebSocket(command.url);
      ws.once('open', () => {
        connected += 1;
        if (connected === command.clients) send({ type: 'connected', count: connected });
      });
      return ws;
    });
  } else if (command.type === 'run-ws') {
    const receivers = wsClients;
    const results = collector(command.count * receivers.length);
    for (const ws of receivers) {
      ws.removeAllListeners('message');
      ws.on('message', (data) =>
        results.record((JSON.parse((data as Buffer).toString('utf8')) as { t: number }).t),
      );
    }
    const pad = 'x'.repeat(Math.max(0, command.payloadBytes - 40));
    const firstSend = await steady(command.count, command.perSecond, () => {
      wsClients[0]!.send(JSON.stringify({ t: clock(), pad }));
    });
    await results.finished;
    send({ type: 'result', ...results.summary(firstSend) });
  } else if (command.type === 'close') {
    ioClients.forEach((s) => s.disconnect());
    wsClients.forEach((ws) => ws.close());
    setTimeout(() => process.exit(0), 200);
  }
});
