// RedisGenerationLog against a real redis-server: a producer process (A) appends, follower
// processes (B, C) follow over their own connections; every follower gets exactly the events after
// its seq, once, in order, through subscriber kills, a paused Redis and a restarted one.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isTerminal, type GenerationEvent } from '../../src/ai/generation-log.js';
import {
  RedisGenerationLog,
  type RedisGenerationLogOptions,
} from '../../src/ai/redis-generation-log.js';
import { entryId, liveChannel, streamKey } from '../../src/ai/redis-generation-stream.js';
import { createMetrics } from '../../src/infra/metrics.js';
import { connectRedis, type RedisClients } from '../../src/infra/redis.js';
import { startTestRedis, type TestRedis } from '../support/redis-server.js';

let redis: TestRedis;
let admin: Redis;
const opened: { log: RedisGenerationLog; clients: RedisClients }[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  admin = new Redis(redis.url, { lazyConnect: true });
  admin.on('error', () => undefined);
  await admin.connect();
});

afterEach(async () => {
  for (const { log, clients } of opened.splice(0)) {
    await log.close();
    await clients.close();
  }
});

afterAll(async () => {
  admin.disconnect();
  await redis.dispose();
});

type Options = Partial<Omit<RedisGenerationLogOptions, 'command' | 'subscriber'>>;

/** A process of its own: its own command and subscriber connections, its own log. */
async function instance(options: Options = {}) {
  const clients = connectRedis(
    redis.url,
    createMetrics({ collectDefault: false }),
    () => undefined,
  );
  await clients.ready();
  const errors: unknown[] = [];
  const log = new RedisGenerationLog({
    command: clients.command,
    subscriber: clients.subscriber,
    onError: (error) => errors.push(error),
    ...options,
  });
  opened.push({ log, clients });
  return { log, clients, errors };
}

/** A generation of `count` events: start (seq 0), deltas, end (seq count - 1). */
function answer(count: number): GenerationEvent[] {
  const generationId = randomUUID();
  const messageId = randomUUID();
  const conversationId = randomUUID();
  return Array.from({ length: count }, (_, seq): GenerationEvent => {
    if (seq === 0) return { type: 'start', seq, generationId, messageId, conversationId };
    if (seq < count - 1) return { type: 'delta', seq, generationId, messageId, delta: `d${seq} ` };
    return {
      type: 'end',
      seq,
      generationId,
      messageId,
      conversationId,
      status: 'SENT',
      finishReason: 'stop',
      usage: { promptTokens: 3, completionTokens: count - 2, totalTokens: count + 1 },
      model: 'test-model',
    };
  });
}

/** A listener that keeps what it hears, and a promise of the terminal event. */
function collector() {
  const got: GenerationEvent[] = [];
  let resolve!: () => void;
  const ended = new Promise<void>((done) => (resolve = done));
  return {
    got,
    seqs: () => got.map((event) => event.seq),
    ended: (ms = 10_000) => timeLimit(ended, ms, 'the terminal event'),
    listener: (event: GenerationEvent) => {
      got.push(event);
      if (isTerminal(event)) resolve();
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const range = (from: number, to: number) =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

async function timeLimit<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`No ${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor(check: () => boolean | Promise<boolean>, ms: number, what: string) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Not ${what} within ${ms} ms`);
    await sleep(20);
  }
}

/** Appends events one by one, a few ms apart (a model streaming). */
async function stream(log: RedisGenerationLog, events: GenerationEvent[], gapMs = 2) {
  for (const event of events) {
    log.append(event);
    await sleep(gapMs);
  }
}

const subscribers = async (channel: string) =>
  Number(((await admin.pubsub('NUMSUB', channel)) as [string, number])[1]);

describe('RedisGenerationLog', () => {
  it('follows an answer on another process from the start: every event once, in order', async () => {
    const a = await instance();
    const b = await instance();
    const events = answer(60);
    const id = events[0]!.generationId;
    a.log.append(events[0]!);
    await a.log.flushed(id);
    const follower = collector();
    const unfollow = await b.log.follow(id, -1, follower.listener);
    expect(unfollow).toBeTypeOf('function');
    await stream(a.log, events.slice(1));
    await follower.ended();
    await sleep(100); // nothing after the end
    expect(follower.got).toEqual(events);
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  it('gives followers that join mid-answer or after the end exactly the events after their seq', async () => {
    const a = await instance();
    const b = await instance();
    const c = await instance();
    const events = answer(100);
    const id = events[0]!.generationId;
    await stream(a.log, events.slice(0, 50), 0);
    await a.log.flushed(id);
    const mid = [-1, 10, 49, 70].map(() => collector());
    const midSeqs = [-1, 10, 49, 70];
    await Promise.all(mid.map((f, i) => b.log.follow(id, midSeqs[i]!, f.listener)));
    await stream(a.log, events.slice(50));
    await Promise.all(mid.map((f) => f.ended()));
    mid.forEach((f, i) => expect(f.seqs()).toEqual(range(midSeqs[i]! + 1, 99)));

    // After the end: from B's lingering copy, and from C, which reads the stored stream.
    const afterSeqs = [-1, 42, 98, 99];
    for (const log of [b.log, c.log]) {
      const late = afterSeqs.map(() => collector());
      const unfollows = await Promise.all(
        late.map((f, i) => log.follow(id, afterSeqs[i]!, f.listener)),
      );
      unfollows.forEach((unfollow) => expect(unfollow).toBeTypeOf('function'));
      late.forEach((f, i) => expect(f.seqs()).toEqual(range(afterSeqs[i]! + 1, 99)));
      expect(late[0]!.got).toEqual(events);
    }
  });

  it('serves 20 followers joining at random moments of a 200-event answer, each exactly its events', async () => {
    const a = await instance();
    const b = await instance();
    const events = answer(200);
    const id = events[0]!.generationId;
    a.log.append(events[0]!);
    await a.log.flushed(id);
    const followers = Array.from({ length: 20 }, () => ({
      ...collector(),
      // From before the start to just before the end (a follower past the end hears nothing).
      afterSeq: Math.floor(Math.random() * 200) - 1,
      joinAfterMs: Math.random() * 500,
    }));
    await Promise.all([
      stream(a.log, events.slice(1), 3),
      ...followers.map(async (f) => {
        await sleep(f.joinAfterMs);
        await b.log.follow(id, f.afterSeq, f.listener);
      }),
    ]);
    await Promise.all(followers.map((f) => f.ended()));
    for (const f of followers) expect(f.seqs()).toEqual(range(f.afterSeq + 1, 199));
    expect(await subscribers(liveChannel(id))).toBe(1); // one subscription for all of them
  });

  it('loses no end appended while followers are joining (subscribed, then read, then read again)', async () => {
    const a = await instance();
    // No quiet-spell reads: an end missed by both the read and the subscription never arrives.
    // 400 races: reading before subscribing fails every run; a read that does not run once more
    // for a message that came during it (ahead of what it returned) fails in some runs.
    const b = await instance({ idleMs: 60_000 });
    const answers = Array.from({ length: 400 }, () => answer(3));
    for (const events of answers) a.log.append(events[0]!);
    await Promise.all(answers.map((events) => a.log.flushed(events[0]!.generationId)));
    const followers = answers.map(() => collector());
    await Promise.all(
      answers.flatMap((events, i) => [
        b.log.follow(events[0]!.generationId, -1, followers[i]!.listener),
        sleep(i % 5).then(() => {
          a.log.append(events[1]!);
          a.log.append(events[2]!);
        }),
      ]),
    );
    await Promise.all(followers.map((f) => f.ended(2_000)));
    followers.forEach((f, i) => expect(f.got).toEqual(answers[i]));
  });

  it("loses nothing when the follower's subscriber connection is killed mid-answer", async () => {
    const a = await instance();
    // No quiet-spell reads within the test: what is lost comes back by the gap and reconnect paths.
    const b = await instance({ idleMs: 60_000 });
    const events = answer(150);
    const id = events[0]!.generationId;
    a.log.append(events[0]!);
    await a.log.flushed(id);
    const follower = collector();
    await b.log.follow(id, -1, follower.listener);
    let reconnected = 0;
    b.clients.subscriber.on('ready', () => (reconnected += 1));
    await stream(a.log, events.slice(1, 60));
    expect(Number(await admin.client('KILL', 'TYPE', 'pubsub'))).toBeGreaterThanOrEqual(1);
    await stream(a.log, events.slice(60));
    await follower.ended();
    expect(follower.got).toEqual(events);
    expect(reconnected).toBeGreaterThanOrEqual(1);
  });

  it('reads again when the subscriber is back: the end published while it was away arrives', async () => {
    const a = await instance();
    const b = await instance({ idleMs: 60_000 });
    const events = answer(40);
    const id = events[0]!.generationId;
    await stream(a.log, events.slice(0, 20), 0);
    await a.log.flushed(id);
    const follower = collector();
    await b.log.follow(id, -1, follower.listener);
    await waitFor(() => follower.got.length === 20, 5_000, 'caught up');
    // B's subscriber is killed and kept out (no new connections) while the rest, end included,
    // is stored and published: nothing follows it, so no later message shows a gap; only the
    // read after the reconnect can bring it.
    const [, limit] = (await admin.config('GET', 'maxclients')) as [string, string];
    await admin.multi().config('SET', 'maxclients', '1').client('KILL', 'TYPE', 'pubsub').exec();
    try {
      for (const event of events.slice(20)) a.log.append(event);
      await a.log.flushed(id);
      expect(await subscribers(liveChannel(id))).toBe(0);
      await sleep(300);
      expect(follower.got).toHaveLength(20);
    } finally {
      await admin.config('SET', 'maxclients', limit);
    }
    const backAt = Date.now();
    await follower.ended(3_000);
    expect(Date.now() - backAt).toBeLessThan(3_000);
    expect(follower.got).toEqual(events);
  });

  it('fills a gap at once: a message ahead of the next seq makes the follower read the stream', async () => {
    const a = await instance();
    const b = await instance({ idleMs: 60_000 });
    const events = answer(8);
    const id = events[0]!.generationId;
    await stream(a.log, events.slice(0, 3), 0);
    await a.log.flushed(id);
    const follower = collector();
    await b.log.follow(id, -1, follower.listener);
    // Seq 3 and 4 stored without their messages (lost); 5 on arrives as usual and shows the gap.
    for (const event of events.slice(3, 5)) {
      await admin.xadd(streamKey(id), entryId(event.seq), 'event', JSON.stringify(event), 'at', 0);
    }
    for (const event of events.slice(5)) a.log.append(event);
    await follower.ended(2_000);
    expect(follower.got).toEqual(events);
  });

  it('reads a quiet answer again: an event whose message was lost arrives within the idle time', async () => {
    const a = await instance();
    const b = await instance({ idleMs: 300 });
    const events = answer(5);
    const id = events[0]!.generationId;
    await stream(a.log, events.slice(0, 3), 0);
    await a.log.flushed(id);
    const follower = collector();
    await b.log.follow(id, -1, follower.listener);
    // Stored without its pub/sub message, as if the message were lost.
    for (const event of events.slice(3)) {
      await admin.xadd(streamKey(id), entryId(event.seq), 'event', JSON.stringify(event), 'at', 0);
    }
    await follower.ended(3_000);
    expect(follower.got).toEqual(events);
  });

  it('keeps appends while Redis is down and stores them all, in order, when it is back', async () => {
    const a = await instance();
    const events = answer(60);
    const id = events[0]!.generationId;
    await redis.stop();
    // The whole first half is appended while Redis is away (it restarts empty: nothing of this
    // answer is stored before the outage, so the stream must hold exactly what was appended).
    const outage = stream(a.log, events.slice(0, 30), 50);
    let flushed = false;
    void a.log.flushed(id).then(() => (flushed = true));
    await outage;
    expect(flushed).toBe(false);
    await redis.start();
    const restartedAt = Date.now();
    await stream(a.log, events.slice(30));
    await timeLimit(a.log.flushed(id), 10_000, 'flush');
    expect(flushed).toBe(true);
    expect(Date.now() - restartedAt).toBeLessThan(5_000);
    expect(await a.log.read(id, -1)).toEqual(events);
    expect(a.errors.length).toBeGreaterThanOrEqual(1);
  });

  it('retries appends that time out on a paused Redis, storing each exactly once', async () => {
    const a = await instance();
    const b = await instance();
    const events = answer(80);
    const id = events[0]!.generationId;
    a.log.append(events[0]!);
    await a.log.flushed(id);
    const follower = collector();
    await b.log.follow(id, -1, follower.listener);
    await stream(a.log, events.slice(1, 20));
    await a.log.flushed(id);
    // Longer than a command may take (2 s): the appends time out and are sent again; the first
    // attempts are still queued in Redis and run when it resumes.
    await admin.client('PAUSE', 3_000, 'ALL');
    const pausedAt = Date.now();
    await stream(a.log, events.slice(20, 50), 50);
    await timeLimit(a.log.flushed(id), 10_000, 'flush');
    expect(Date.now() - pausedAt).toBeGreaterThanOrEqual(2_900);
    await stream(a.log, events.slice(50));
    await follower.ended();
    expect(follower.got).toEqual(events);
    expect(await a.log.read(id, -1)).toEqual(events);
    expect(await admin.xlen(streamKey(id))).toBe(80);
    expect(a.errors.some((error) => /timed out/i.test(String(error)))).toBe(true);
  });

  it('knows no unknown generation; keeps a finished one for the retention time', async () => {
    const a = await instance({ retentionMs: 120_000 });
    const b = await instance();
    expect(await a.log.read(randomUUID(), -1)).toBeUndefined();
    expect(await b.log.follow(randomUUID(), -1, () => undefined)).toBeUndefined();
    const events = answer(10);
    const id = events[0]!.generationId;
    await stream(a.log, events.slice(0, 5), 0);
    await a.log.flushed(id);
    expect(await admin.pttl(streamKey(id))).toBeGreaterThan(23 * 60 * 60_000);
    expect(await b.log.read(id, 2)).toEqual(events.slice(3, 5));
    expect(await b.log.read(id, 4)).toEqual([]); // known, nothing new
    await stream(a.log, events.slice(5), 0);
    await a.log.flushed(id);
    const ttl = await admin.pttl(streamKey(id));
    expect(ttl).toBeGreaterThan(110_000);
    expect(ttl).toBeLessThanOrEqual(120_000);
    expect(await b.log.read(id, -1)).toEqual(events);
  });

  it('reports the relay lag of each event that arrives live, not of replayed ones', async () => {
    const a = await instance();
    const lagsB: number[] = [];
    const lagsC: number[] = [];
    const b = await instance({ onRelayed: (lag) => lagsB.push(lag) });
    const c = await instance({ onRelayed: (lag) => lagsC.push(lag) });
    const events = answer(30);
    const id = events[0]!.generationId;
    await stream(a.log, events.slice(0, 10), 0);
    await a.log.flushed(id);
    const follower = collector();
    await b.log.follow(id, -1, follower.listener);
    expect(lagsB).toEqual([]); // the first ten were replayed
    await stream(a.log, events.slice(10));
    await follower.ended();
    expect(lagsB).toHaveLength(20);
    for (const lag of lagsB) {
      expect(lag).toBeGreaterThanOrEqual(0);
      expect(lag).toBeLessThan(1_000);
    }
    await c.log.follow(id, -1, () => undefined);
    expect(lagsC).toEqual([]);
  });

  it('close unsubscribes, and gives up on appends Redis cannot take within a second', async () => {
    const a = await instance();
    const b = await instance();
    const events = answer(10);
    const id = events[0]!.generationId;
    await stream(a.log, events.slice(0, 5), 0);
    await a.log.flushed(id);
    const follower = collector();
    await b.log.follow(id, -1, follower.listener);
    expect(await subscribers(liveChannel(id))).toBe(1);
    await b.log.close();
    expect(await subscribers(liveChannel(id))).toBe(0);
    await stream(a.log, events.slice(5, 7), 0);
    await a.log.flushed(id);
    await sleep(100);
    expect(follower.seqs()).toEqual(range(0, 4)); // nothing after close

    await redis.stop();
    try {
      a.log.append(events[7]!);
      const closing = Date.now();
      await a.log.close();
      expect(Date.now() - closing).toBeLessThan(1_500);
      await timeLimit(a.log.flushed(id), 100, 'flushed after close');
      expect(a.errors.some((error) => /not stored/.test(String(error)))).toBe(true);
    } finally {
      await redis.start();
    }
  });

  it('unsubscribes a linger after the end, and after the last follower of a running answer left', async () => {
    const a = await instance();
    // A linger long enough that a loaded machine still sees the subscription before it ends.
    const b = await instance({ lingerMs: 1_000 });
    const done = answer(5);
    await stream(a.log, done, 0);
    await a.log.flushed(done[0]!.generationId);
    await b.log.follow(done[0]!.generationId, -1, () => undefined);
    expect(await subscribers(liveChannel(done[0]!.generationId))).toBe(1);
    await waitFor(
      async () => (await subscribers(liveChannel(done[0]!.generationId))) === 0,
      3_000,
      'unsubscribed after the end',
    );

    const running = answer(30);
    const id = running[0]!.generationId;
    await stream(a.log, running.slice(0, 10), 0);
    await a.log.flushed(id);
    const leaver = collector();
    const unfollow = await b.log.follow(id, -1, leaver.listener);
    unfollow!();
    await waitFor(async () => (await subscribers(liveChannel(id))) === 0, 3_000, 'unsubscribed');
    await stream(a.log, running.slice(10, 20), 0);
    // Following again starts over from the stored stream: nothing missed meanwhile.
    const back = collector();
    await b.log.follow(id, 5, back.listener);
    await stream(a.log, running.slice(20));
    await back.ended();
    expect(back.seqs()).toEqual(range(6, 29));
    expect(leaver.seqs()).toEqual(range(0, 9));
  });
});

describe('appendTerminal (an answer ended by another process than its runner)', () => {
  const interrupted = (of: GenerationEvent) => ({
    type: 'error' as const,
    generationId: of.generationId,
    messageId: of.messageId,
    conversationId: (of as { conversationId: string }).conversationId,
    status: 'FAILED' as const,
    error: 'Interrupted',
    code: 'interrupted',
  });

  it('goes right after the last event stored, and a follower gets it as the end', async () => {
    const producer = await instance();
    const ender = await instance();
    const follower = await instance();
    const events = answer(10).slice(0, 5); // start and deltas 1..4: the runner died there
    for (const event of events) producer.log.append(event);
    await producer.log.flushed(events[0]!.generationId);
    const heard = collector();
    await follower.log.follow(events[0]!.generationId, -1, heard.listener);
    await ender.log.appendTerminal(interrupted(events[0]!));
    await heard.ended();
    expect(heard.seqs()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(heard.got.at(-1)).toMatchObject({ type: 'error', seq: 5, code: 'interrupted' });
  });

  it('adds nothing when the end is stored already, and a runner still appending cannot take its seq', async () => {
    const producer = await instance();
    const ender = await instance();
    const events = answer(8);
    for (const event of events) producer.log.append(event);
    await producer.log.flushed(events[0]!.generationId);
    await ender.log.appendTerminal(interrupted(events[0]!));
    const stored = await ender.log.read(events[0]!.generationId, -1);
    expect(stored!.map((e) => e.seq)).toEqual(range(0, 7));
    expect(stored!.at(-1)!.type).toBe('end');

    // A runner that goes on after another process ended its answer: its events are refused.
    const other = answer(8);
    for (const event of other.slice(0, 3)) producer.log.append(event);
    await producer.log.flushed(other[0]!.generationId);
    await ender.log.appendTerminal(interrupted(other[0]!));
    for (const event of other.slice(3)) producer.log.append(event);
    await producer.log.flushed(other[0]!.generationId);
    const after = await ender.log.read(other[0]!.generationId, -1);
    expect(after!.map((e) => e.type)).toEqual(['start', 'delta', 'delta', 'error']);
  });
});
