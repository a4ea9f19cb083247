// The scale-out generation log: a Redis Stream per generation. The process running an answer
// appends (each event stored and published in one transaction, retried in order while Redis is
// away); API instances anywhere read and follow it for their sockets and SSE streams.
import type { Redis } from 'ioredis';
import {
  isTerminal,
  type GenerationEvent,
  type GenerationListener,
  type GenerationLog,
  type TerminalEvent,
} from './generation-log.js';
import { GenerationMirrors } from './redis-generation-mirror.js';
import {
  entryId,
  isAlreadyStored,
  liveChannel,
  liveMessage,
  readStream,
  streamKey,
} from './redis-generation-stream.js';
import { within } from '../utils/within.js';

/** A generation's stream outlives a producer that dies before its end by this much, at most. */
const SAFETY_TTL_MS = 24 * 60 * 60_000;
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 1_000;
/**
 * Appends a terminal event (ARGV[1], JSON without seq) after the stream's last entry, with the
 * next seq, stored and published as `store` does — unless the last entry is terminal already.
 */
const APPEND_TERMINAL = `
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local seq = 0
if #last > 0 then
  local fields = last[1][2]
  local stored
  for i = 1, #fields, 2 do if fields[i] == 'event' then stored = cjson.decode(fields[i + 1]) end end
  if stored.type == 'end' or stored.type == 'error' then return -1 end
  seq = stored.seq + 1
end
local event = cjson.decode(ARGV[1])
event.seq = seq
local json = cjson.encode(event)
redis.call('XADD', KEYS[1], seq .. '-1', 'event', json, 'at', ARGV[2])
redis.call('PUBLISH', KEYS[2], '{"at":' .. ARGV[2] .. ',"event":' .. json .. '}')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return seq
`;
/** close() waits this long for appends still being stored. */
const CLOSE_WAIT_MS = 1_000;

export interface RedisGenerationLogOptions {
  /** Appends and reads; fails fast while Redis is down (src/infra/redis.ts). */
  command: Redis;
  /** SUBSCRIBE only; resubscribes by itself after a reconnect. */
  subscriber: Redis;
  /** How long a finished generation stays resumable (default 1 h). */
  retentionMs?: number;
  /** Failed appends (first of a run of failures), failed reads while following, listener errors. */
  onError: (error: unknown) => void;
  /** From an event's append to its arrival in this process, for each event that arrives live. */
  onRelayed?: (lagMs: number) => void;
  /** A finished (or no longer followed) generation stays mirrored here this long (default 30 s). */
  lingerMs?: number;
  /** A running generation silent this long is read again, in case pub/sub lost some (default 5 s). */
  idleMs?: number;
}

interface Pending {
  event: GenerationEvent;
  json: string;
  at: number;
}

/** A generation's events not yet stored, oldest first, and who waits for them. */
interface Outbox {
  pending: Pending[];
  drained: Promise<void>;
  resolve: () => void;
  retryTimer?: NodeJS.Timeout;
  wake?: () => void;
}

export class RedisGenerationLog implements GenerationLog {
  private readonly outboxes = new Map<string, Outbox>();
  private readonly mirrors: GenerationMirrors;
  private readonly retentionMs: number;
  private stopped = false;

  constructor(private readonly options: RedisGenerationLogOptions) {
    this.retentionMs = options.retentionMs ?? 60 * 60_000;
    this.mirrors = new GenerationMirrors({
      command: options.command,
      subscriber: options.subscriber,
      onError: options.onError,
      onRelayed: options.onRelayed,
      lingerMs: options.lingerMs ?? 30_000,
      idleMs: options.idleMs ?? 5_000,
    });
  }

  append(event: GenerationEvent): void {
    const pending = { event, json: JSON.stringify(event), at: Date.now() };
    const outbox = this.outboxes.get(event.generationId);
    if (outbox) {
      outbox.pending.push(pending);
      return;
    }
    let resolve!: () => void;
    const drained = new Promise<void>((done) => (resolve = done));
    const fresh: Outbox = { pending: [pending], drained, resolve };
    this.outboxes.set(event.generationId, fresh);
    // Sent before append returns: a message published next on the same connection (the cluster's
    // generation.started) reaches Redis after this event is stored.
    void this.pump(event.generationId, fresh);
  }

  async appendTerminal(event: TerminalEvent): Promise<void> {
    const at = Date.now();
    await this.options.command.eval(
      APPEND_TERMINAL,
      2,
      streamKey(event.generationId),
      liveChannel(event.generationId),
      JSON.stringify(event),
      String(at),
      String(this.retentionMs),
    );
  }

  flushed(generationId: string): Promise<void> {
    return this.outboxes.get(generationId)?.drained ?? Promise.resolve();
  }

  async read(generationId: string, afterSeq: number): Promise<GenerationEvent[] | undefined> {
    const from = Math.max(0, Math.floor(afterSeq) + 1);
    const stored = await readStream(this.options.command, generationId, from);
    if (stored.length === 0) {
      if (from === 0 || !(await this.options.command.exists(streamKey(generationId)))) {
        return undefined;
      }
    }
    // A runner that went on after another process ended its answer (appendTerminal) may have
    // stored events past the end: they are not part of the answer.
    const events = stored.map(({ event }) => event);
    const end = events.findIndex(isTerminal);
    return end < 0 ? events : events.slice(0, end + 1);
  }

  follow(
    generationId: string,
    afterSeq: number,
    listener: GenerationListener,
  ): Promise<(() => void) | undefined> {
    return this.mirrors.follow(generationId, afterSeq, listener);
  }

  /** Stops following; waits up to a second for appends still being stored, then drops them. */
  async close(): Promise<void> {
    const draining = Promise.all([...this.outboxes.values()].map((outbox) => outbox.drained));
    await Promise.all([this.mirrors.close(), within(draining, CLOSE_WAIT_MS)]);
    this.stopped = true;
    for (const outbox of this.outboxes.values()) {
      clearTimeout(outbox.retryTimer);
      outbox.wake?.();
    }
  }

  /** Stores a generation's events one at a time, in order, retrying each until it is stored. */
  private async pump(generationId: string, outbox: Outbox) {
    let delay = RETRY_FIRST_MS;
    let failing = false;
    for (let next = outbox.pending[0]; next && !this.stopped; next = outbox.pending[0]) {
      try {
        await this.store(next);
        outbox.pending.shift();
        delay = RETRY_FIRST_MS;
        failing = false;
      } catch (error) {
        // Once per outage, not once per retry: the connection reports its own errors too.
        if (!failing) this.options.onError(error);
        failing = true;
        await new Promise<void>((wake) => {
          outbox.wake = wake;
          outbox.retryTimer = setTimeout(wake, delay);
        });
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
    if (outbox.pending.length) {
      this.options.onError(
        new Error(
          `Generation ${generationId}: ${outbox.pending.length} events not stored (closed)`,
        ),
      );
    }
    this.outboxes.delete(generationId);
    outbox.resolve();
  }

  /**
   * XADD and PUBLISH in one transaction: no follower hears of an event that is not stored. The
   * stream expires a day after its start (a producer that died), or `retentionMs` after its end.
   */
  private async store({ event, json, at }: Pending) {
    const key = streamKey(event.generationId);
    const transaction = this.options.command
      .multi()
      .xadd(key, entryId(event.seq), 'event', json, 'at', String(at))
      .publish(liveChannel(event.generationId), liveMessage(json, at));
    if (event.seq === 0) transaction.pexpire(key, SAFETY_TTL_MS);
    if (isTerminal(event)) transaction.pexpire(key, this.retentionMs);
    const results = await transaction.exec();
    if (!results) throw new Error('The transaction was aborted');
    for (const [error] of results) {
      // Stored by an attempt whose reply was lost: this one republished it (followers drop the
      // duplicate) and set the expiry again.
      if (error && !isAlreadyStored(error)) throw error;
    }
  }
}
