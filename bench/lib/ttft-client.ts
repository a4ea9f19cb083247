// The client of bench/ttft.ts's time-to-first-token rounds, in its own process as a real client
// is: it sends `message:send` on its socket and reports when it sent, when the first
// `ai:stream:delta` arrived and when the answer ended (on the clock both processes share).
import { io } from 'socket.io-client';

type Command =
  | { type: 'connect'; url: string; token: string }
  | { type: 'ask'; conversationId: string; content: string }
  | { type: 'close' };

const clock = () => performance.timeOrigin + performance.now();
const send = (message: unknown) => process.send!(message);
let socket: ReturnType<typeof io> | undefined;

process.on('message', (command: Command) => {
  if (command.type === 'connect') {
    socket = io(command.url, {
      auth: { token: command.token, seedEvents: false },
      transports: ['websocket'],
    });
    socket.once('connect', () => send({ type: 'connected' }));
    socket.once('connect_error', (error) => send({ type: 'error', message: error.message }));
  } else if (command.type === 'ask') {
    const client = socket!;
    let firstDeltaAt = 0;
    const onDelta = () => {
      firstDeltaAt ||= clock();
    };
    const onEnd = (payload: { status: string }) => {
      client.off('ai:stream:delta', onDelta);
      client.off('ai:stream:end', onEnd);
      send({ type: 'answered', sentAt, firstDeltaAt, status: payload.status });
    };
    client.on('ai:stream:delta', onDelta);
    client.on('ai:stream:end', onEnd);
    const sentAt = clock();
    client.emit('message:send', {
      conversationId: command.conversationId,
      content: command.content,
    });
  } else {
    socket?.disconnect();
    process.exit(0);
  }
});
