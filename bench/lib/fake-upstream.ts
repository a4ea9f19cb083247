// The upstream of bench/ttft.ts, in its own process so its 10,000 writes a second at full load
// do not count against the server's event loop: the test suite's OpenAI-compatible fake (the
// real chat-completions SSE wire format), answering every request with the behaviour the
// parent set, and reporting when each request arrived and when its first token left.
import { startFakeOpenAi, type Behaviour } from '../../test/support/fake-openai.js';

type Command =
  { type: 'behaviour'; behaviour: Behaviour } | { type: 'timings' } | { type: 'close' };

const fake = await startFakeOpenAi();
const send = (message: unknown) => process.send!(message);

process.on('message', (command: Command) => {
  if (command.type === 'behaviour') {
    fake.fallback = command.behaviour;
    fake.requests.length = 0;
    send({ type: 'ok' });
  } else if (command.type === 'timings') {
    send({
      type: 'timings',
      requests: fake.requests.map(({ receivedAt, firstTokenAt, completed }) => ({
        receivedAt,
        firstTokenAt,
        completed,
      })),
    });
  } else {
    void fake.close().then(() => process.exit(0));
  }
});

send({ type: 'ready', baseURL: fake.baseURL });
