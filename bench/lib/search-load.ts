// The searching user of bench/search-isolation.ts, in its own process so reading its large
// responses costs the server's process nothing: `concurrency` loops, each sending the next
// search as soon as the previous one has answered, until told to stop.
import { Pool } from 'undici';

type Command =
  | {
      type: 'start';
      url: string;
      token: string;
      conversationId: string;
      queries: string[];
      concurrency: number;
    }
  | { type: 'stop' }
  | { type: 'close' };

const send = (message: unknown) => process.send!(message);

let running = false;
let loops: Promise<void>[] = [];
let pool: Pool | undefined;
const latencies: number[] = [];
const statuses: Record<number, number> = {};

async function loop(command: Extract<Command, { type: 'start' }>, worker: number) {
  for (let n = worker; running; n += command.concurrency) {
    const q = encodeURIComponent(command.queries[n % command.queries.length]!);
    // Half in the conversation, half across all of the user's conversations (both routes).
    const path =
      n % 2 === 0
        ? `/api/chat/conversations/${command.conversationId}/search?q=${q}&limit=25`
        : `/api/chat/search?q=${q}&limit=25`;
    const started = performance.now();
    const response = await pool!.request({
      path,
      method: 'GET',
      headers: { authorization: `Bearer ${command.token}` },
    });
    await response.body.arrayBuffer();
    latencies.push(performance.now() - started);
    statuses[response.statusCode] = (statuses[response.statusCode] ?? 0) + 1;
  }
}

process.on('message', (command: Command) => {
  void (async () => {
    if (command.type === 'start') {
      pool = new Pool(command.url, { connections: command.concurrency });
      latencies.length = 0;
      for (const key of Object.keys(statuses)) delete statuses[Number(key)];
      running = true;
      loops = Array.from({ length: command.concurrency }, (_, i) => loop(command, i));
      send({ type: 'started' });
    } else if (command.type === 'stop') {
      running = false;
      await Promise.all(loops);
      await pool?.close();
      send({ type: 'stopped', latencies, statuses });
    } else {
      process.exit(0);
    }
  })().catch((error: unknown) =>
    send({ type: 'error', message: error instanceof Error ? error.message : String(error) }),
  );
});
// The benchmark's process going away (a failure there) must not leave this one behind.
process.on('disconnect', () => process.exit(0));
